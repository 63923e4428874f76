"""Runtime settings shared by every layer: torch's CPU thread count for a block of work."""
from __future__ import annotations

import contextlib
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
