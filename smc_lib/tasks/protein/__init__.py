"""Protein thermostability (SMC-Bench section 3.3): HotProtein and Meltome with ESM and TAPE."""
from .task import ProteinTask  # noqa: F401  (registers "protein")
