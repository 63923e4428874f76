"""Linear layers applied many times in one forward pass, with one weight-gradient product each in backward.

The tree decoder's teacher-forced loss applies each of its linear layers once per tree level to a handful
of nodes (4–8 rows for a batch of 4). Left to autograd, every application costs a skinny weight-gradient
product plus an accumulation into the (512 × 1536) gradient, both bound by memory, not arithmetic. Inside
`LinearTape`, `linear(module, x)` records each application's input and, in backward, its output gradient;
once every application's backward has run (autograd's dependency order guarantees it), one product over
all recorded rows gives the module's weight gradient. Same gradients up to summation order (tested against
plain autograd in tests/test_arithmetic_models.py).

Outside a tape (beam search, `no_grad`), `linear` is `F.linear`, except that a few rows against a large
weight go through (W xᵀ)ᵀ, which MKL computes in a matrix-vector-like kernel without packing W (faster
for 4–8 rows of a 512 × 1536 weight on CPU; `smc bench gts` prints the step against the plain path).
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...runtime import fast_paths

_ACTIVE: contextvars.ContextVar[dict[nn.Linear, "_Record"] | None] = contextvars.ContextVar("linear_tape",
                                                                                             default=None)
SKINNY_ROWS = 8
_PLAIN: contextvars.ContextVar[bool] = contextvars.ContextVar("plain_linear", default=False)


@contextlib.contextmanager
def plain_linear() -> Iterator[None]:
    """`linear` is exactly `F.linear` inside (the reference implementation's timing baseline)."""
    reset = _PLAIN.set(True)
    try:
        yield
    finally:
        _PLAIN.reset(reset)


def _forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    if x.dim() == 2 and x.size(0) <= SKINNY_ROWS and x.device.type == "cpu" and not _PLAIN.get() and fast_paths():
        out = torch.mm(weight, x.t()) if bias is None else torch.addmm(bias[:, None], weight, x.t())
        return out.t()
    return F.linear(x, weight, bias)


@dataclass
class _Record:
    """The applications of one module in one pass: [input, output gradient, (first, last) weight column,
    bias used], and the scalar they all depend on."""
    token: Tensor | None = None
    entries: list[list] = field(default_factory=list)

    def grads(self, weight: Tensor, bias: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        groups: dict[tuple[int, int], list[tuple[Tensor, Tensor, bool]]] = {}
        for entry in self.entries:
            if entry[1] is not None:                       # an output that reached the loss in this backward
                groups.setdefault(entry[2], []).append((entry[0], entry[1], entry[3]))
                entry[1] = None                            # (a retained graph's next backward sets it again)
        if not groups:
            return None, None
        parts, d_bias = {}, None
        for columns, group in sorted(groups.items()):
            x = torch.cat([x.reshape(-1, x.size(-1)) for x, _, _ in group])
            dy = torch.cat([dy.reshape(-1, dy.size(-1)) for _, dy, _ in group])
            parts[columns] = dy.t() @ x
            biased = [dy.reshape(-1, dy.size(-1)) for _, dy, with_bias in group if with_bias]
            if bias is not None and biased:
                db = torch.cat(biased).sum(0)
                d_bias = db if d_bias is None else d_bias.add_(db)
        return _assemble(parts, weight), d_bias


def _assemble(parts: dict[tuple[int, int], Tensor], weight: Tensor) -> Tensor:
    """The full weight gradient from per-column-range parts (a split weight's halves: one `cat`)."""
    spans = sorted(parts)
    if all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[0][0] == 0 and spans[-1][1] == weight.size(1):
        return parts[spans[0]] if len(spans) == 1 else torch.cat([parts[s] for s in spans], dim=1)
    out = weight.new_zeros(weight.shape)
    for (lo, hi), part in parts.items():
        out[:, lo:hi] += part
    return out


class _Join(torch.autograd.Function):
    """A scalar every application depends on: its backward runs after all of theirs and returns the
    module's parameter gradients."""

    @staticmethod
    def forward(ctx, record: _Record, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.record = record
        ctx.save_for_backward(weight, bias)
        return weight.new_zeros(())

    @staticmethod
    def backward(ctx, _):
        weight, bias = ctx.saved_tensors
        return (None, *ctx.record.grads(weight, bias))


class _Apply(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, token: Tensor, weight: Tensor, bias: Tensor | None, entry: list) -> Tensor:
        ctx.entry, ctx.weight = entry, weight
        return _forward(x, weight, bias)

    @staticmethod
    def backward(ctx, dy: Tensor):
        ctx.entry[1] = dy
        dx = dy @ ctx.weight if ctx.needs_input_grad[0] else None
        return dx, torch.zeros((), dtype=dy.dtype, device=dy.device), None, None, None


class LinearTape:
    """`with LinearTape(modules):` — `linear` calls on these modules defer their weight gradients."""

    def __init__(self, modules):
        self.modules = [m for m in modules if isinstance(m, nn.Linear)]

    def __enter__(self) -> "LinearTape":
        on = torch.is_grad_enabled() and fast_paths() and not any(m.weight.is_cuda for m in self.modules)
        self._reset = _ACTIVE.set({m: _Record() for m in self.modules} if on else None)   # off: plain autograd
        return self

    def __exit__(self, *exc) -> None:
        _ACTIVE.reset(self._reset)


def linear(module: nn.Linear, x: Tensor, columns: slice | None = None, bias: bool = True) -> Tensor:
    """module(x), optionally with only `columns` of its weight (a split input) and without its bias."""
    weight = module.weight if columns is None else module.weight[:, columns]
    b = module.bias if bias else None
    tape = _ACTIVE.get()
    if tape is None or module not in tape or not torch.is_grad_enabled():
        return _forward(x, weight, b)
    record = tape[module]
    if record.token is None:
        record.token = _Join.apply(record, module.weight, module.bias)
    lo, hi, _ = (columns or slice(None)).indices(module.weight.size(1))
    entry = [x.detach(), None, (lo, hi), b is not None]
    record.entries.append(entry)
    return _Apply.apply(x, record.token, weight.detach(), None if b is None else b.detach(), entry)
