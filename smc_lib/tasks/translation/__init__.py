"""Multilingual translation (SMC-Bench section 3.4): mBART many-to-many through English, BLEU."""
from .task import TranslationTask  # noqa: F401  (registers "translation")
