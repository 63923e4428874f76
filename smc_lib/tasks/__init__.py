"""Task registry: `register_task(name)` on a Task subclass; modules are imported here so they register.

A task kept outside the library (your own, or the tests' `toy`) registers by naming its importable module in
the environment variable `SMC_TASK_MODULES` (comma-separated); child processes such as Ray workers inherit
it, so they find the task too.
"""
from __future__ import annotations

import importlib
import os

from ..errors import SMCError
from ..registry import Registry

TASKS: Registry = Registry("task")
register_task = TASKS.register

_MODULES = ["arithmetic", "commonsense", "protein", "translation"]
ENV = "SMC_TASK_MODULES"


def _load() -> None:
    for m in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{m}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{m}":
                raise
    for m in filter(None, (x.strip() for x in os.environ.get(ENV, "").split(","))):
        try:
            importlib.import_module(m)
        except ModuleNotFoundError as e:
            raise SMCError(f"{ENV} names {m!r}, which cannot be imported ({e}); fix the name or its PYTHONPATH") from None


def get_task(name: str):
    _load()
    return TASKS.get(name)


def task_names() -> list[str]:
    _load()
    return TASKS.names()
