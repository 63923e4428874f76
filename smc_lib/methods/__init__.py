"""Method registry: one file per method, each registered with `@register_method(name)`.

Files in this package are imported on first lookup, so adding a method is one new file.
"""
from __future__ import annotations

import importlib
import pkgutil

from ..registry import Registry

METHODS: Registry = Registry("method")
register_method = METHODS.register
_loaded = False


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("base", "scores"):
            importlib.import_module(f"{__name__}.{info.name}")
    _loaded = True


def get_method(name: str):
    _load()
    return METHODS.get(name)


def method_names() -> list[str]:
    _load()
    return METHODS.names()
