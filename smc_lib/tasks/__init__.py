"""Task registry: `register_task(name)` on a Task subclass; modules are imported here so they register."""
from __future__ import annotations

import importlib

from ..registry import Registry

TASKS: Registry = Registry("task")
register_task = TASKS.register

_MODULES = ["toy", "arithmetic", "commonsense", "protein", "translation"]


def _load() -> None:
    for m in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{m}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{m}":
                raise


def get_task(name: str):
    _load()
    return TASKS.get(name)


def task_names() -> list[str]:
    _load()
    return TASKS.names()
