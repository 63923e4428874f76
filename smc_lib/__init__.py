"""SMC-Bench: sparse neural networks on hard tasks ("Sparsity May Cry", Liu, Chen et al., ICLR 2023).

    from smc_lib import prune, MaskSet, register_method, run, sweep

Names resolve on first use (PEP 562), so `import smc_lib` stays cheap: torch, transformers and ray
load only when a run, a mask or a method is touched.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {  # public name → (module, attribute); attribute None = the module itself
    "prune": ("smc_lib.methods.scores", "prune"),
    "MaskSet": ("smc_lib.masks", "MaskSet"),
    "register_method": ("smc_lib.methods", "register_method"),
    "register_task": ("smc_lib.tasks", "register_task"),
    "run": ("smc_lib.sweep", "run"),
    "sweep": ("smc_lib.sweep", None),  # the module: sweep.sweep("arithmetic", profile="cpu"), sweep.collect, ...
    "RunConfig": ("smc_lib.runs", "RunConfig"),
    "RunResult": ("smc_lib.runs", "RunResult"),
    "load_profile": ("smc_lib.config", "load_profile"),
    "SMCError": ("smc_lib.errors", "SMCError"),
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'smc_lib' has no attribute {name!r}")
    module, attr = _LAZY[name]
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    if attr is not None:
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
