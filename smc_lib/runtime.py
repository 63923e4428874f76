"""Runtime settings shared by every layer: torch's CPU thread count for a block of work, and the one switch
for the CPU fast paths.

Fast paths (each beside the plain-torch reference it must match, which runs on CUDA and is its test's oracle):
the block-Fisher Cholesky and Gram products through NumPy / LAPACK (`linalg`), the GRU recurrence with a
hand-written backward (`tasks/arithmetic/rnn.py`), the tree decoder's batched weight gradients (`LinearTape`)
and mask zeroing on the float bits (`masks.zero_pruned`). `SMC_FAST_PATHS=0` switches them all off; the two
paths round differently, so the setting enters every run key when off (`runs.resolve`).
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to `n` (None or 0: leave as is) for the duration, then restored."""
    old = torch.get_num_threads()
    if not n or n == old:                 # nothing to change (and nothing to race on from worker threads)
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


FAST_PATHS_ENV = "SMC_FAST_PATHS"


def fast_paths() -> bool:
    """The CPU fast paths are on unless the environment says SMC_FAST_PATHS=0 (or false / off / no)."""
    return os.environ.get(FAST_PATHS_ENV, "1").strip().lower() not in ("0", "false", "off", "no")


@contextlib.contextmanager
def plain_paths() -> Iterator[None]:
    """The plain-torch references for the duration (what SMC_FAST_PATHS=0 selects): benches time both."""
    old = os.environ.get(FAST_PATHS_ENV)
    os.environ[FAST_PATHS_ENV] = "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(FAST_PATHS_ENV, None)
        else:
            os.environ[FAST_PATHS_ENV] = old
