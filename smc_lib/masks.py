"""MaskSet: the one place that knows how masks are stored, selected, applied, enforced and counted.

A mask is a bool tensor (True = kept, 1 byte per weight) per in-scope parameter. `from_scores` keeps the
highest scores with an *exact* count (global: round(s * n) pruned over the whole scope, as in the global
magnitude pruning of Liu, Chen et al. ICLR 2023 / Frankle & Carbin 2019; layer-wise: round(s * n_p) per
parameter) and a deterministic order (score, then flat index over the parameters in dict order), without
concatenating the scores (see `selection.py`).
Enforcement re-zeros pruned weights after each optimizer step in place (bit masking, no temporaries), so a pruned
weight is exactly 0.0 at every forward pass without duplicating weights as torch's built-in pruning utilities do.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch
from torch import nn

from .errors import SMCError, check_sparsity
from .runtime import fast_paths
from .scope import layer_index, param_kind
from .selection import ScoreView, count_true, prune_lowest

Tensor = torch.Tensor
_ADAM_MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


# ---------------------------------------------------------------------------------------------- MaskSet
_NUMPY_DTYPES = (torch.float16, torch.float32, torch.float64)
_ZERO_CHUNK = 1 << 18


def _zero_pruned_numpy(w: np.ndarray, keep: np.ndarray, buf: np.ndarray) -> None:
    """w &= (keep ? all-ones : 0) on the float bits, chunk by chunk: a kept weight is untouched, a pruned one
    becomes +0.0 exactly, with no float copy of the mask (`smc bench step` and `smc bench prune` print this
    path against torch's `_foreach_mul_`)."""
    if not (w.flags.c_contiguous and keep.flags.c_contiguous):
        np.multiply(w, keep, out=w)
        return
    bits, ones = w.reshape(-1).view(f"i{w.itemsize}"), keep.reshape(-1).view(np.int8)
    for s in range(0, bits.size, _ZERO_CHUNK):
        b = buf[:min(_ZERO_CHUNK, bits.size - s)]
        np.negative(ones[s:s + _ZERO_CHUNK], out=b)            # True → -1 (all bits set), False → 0
        np.bitwise_and(bits[s:s + _ZERO_CHUNK], b, out=bits[s:s + _ZERO_CHUNK])


def zero_pruned(params: list[Tensor], masks: list[Tensor]) -> None:
    """Zero the pruned weights in place: bit masking through NumPy on CPU, `_foreach_mul_` on CUDA."""
    fast = fast_paths()
    with torch.no_grad():
        rest_p, rest_m = [], []
        buf = np.empty(_ZERO_CHUNK, np.int8)
        for p, m in zip(params, masks):
            if p.is_cuda or p.dtype not in _NUMPY_DTYPES or not fast:
                rest_p.append(p)
                rest_m.append(m)
            else:
                _zero_pruned_numpy(p.detach().numpy(), m.numpy(), buf)
        if rest_p:
            torch._foreach_mul_(rest_p, rest_m)


def _named(model_or_params: nn.Module | Mapping[str, Tensor]) -> dict[str, Tensor]:
    if isinstance(model_or_params, nn.Module):
        return dict(model_or_params.named_parameters())
    return dict(model_or_params)


class MaskSet:
    """`{param_name: bool tensor}` (True = kept) over the parameters in scope; see docs/ARCHITECTURE.md."""

    def __init__(self, masks: Mapping[str, Tensor]):
        if not masks:
            raise SMCError("a MaskSet needs at least one parameter; check the pruning scope")
        self.masks: dict[str, Tensor] = {n: m if m.dtype == torch.bool else m.bool() for n, m in masks.items()}
        self._params: list[Tensor] | None = None
        self._optimizer: torch.optim.Optimizer | None = None

    # -- construction
    @classmethod
    def dense(cls, params: Mapping[str, Tensor]) -> "MaskSet":
        """All-kept masks for `params` (e.g. `scope.prunable(model)`)."""
        return cls({n: torch.ones(p.shape, dtype=torch.bool, device=p.device) for n, p in params.items()})

    @classmethod
    def from_scores(cls, scores: Mapping[str, Tensor], sparsity: float, layerwise: bool = False,
                    keep: "MaskSet | None" = None, transform: Callable[[Tensor], Tensor] | None = None) -> "MaskSet":
        """Keep the highest scores: exactly round(sparsity * n) pruned over all of `scores` (or per tensor
        if `layerwise`), ties broken by flat index (lower index pruned first), deterministic.

        `keep`: weights pruned there stay pruned (their scores count as -inf) — for IMP and gradual pruning.
        `transform`: an elementwise function applied chunk by chunk, so `from_scores(params, s,
        transform=torch.abs)` is magnitude pruning without materialising |w| for the whole model.
        """
        s = check_sparsity(sparsity)
        if not scores:
            raise SMCError("no scores given; the pruning scope is empty")
        for n, v in scores.items():
            if not v.is_floating_point():
                raise SMCError(f"scores for {n!r} have dtype {v.dtype}; give floating-point scores")
        names = list(scores)
        kept = None
        if keep is not None:
            missing = [n for n in names if n not in keep.masks]
            if missing:
                raise SMCError(f"`keep` has no mask for {missing[:3]}; build it over the same scope as the scores")
            kept = {n: keep.masks[n].to(scores[n].device) for n in names}
        view = ScoreView(scores, transform, kept)
        groups = [[n] for n in names] if layerwise else [names]
        masks: dict[str, Tensor] = {}
        for group in groups:
            n = sum(scores[nm].numel() for nm in group)
            k = round(s * n)
            if kept is not None:
                already = sum(kept[nm].numel() - count_true(kept[nm]) for nm in group)
                if already > k:
                    raise SMCError(f"sparsity {s} is below the {already / n:.4f} already pruned in `keep` "
                                   f"({', '.join(group[:2])}{'...' if len(group) > 2 else ''}); "
                                   "pruned weights cannot be revived by from_scores")
            masks.update(prune_lowest(view, group, k))
        return cls(masks)

    # -- application and enforcement
    def apply(self, model_or_params: nn.Module | Mapping[str, Tensor]) -> None:
        """Zero the pruned weights in place."""
        params = _named(model_or_params)
        missing = [n for n in self.masks if n not in params]
        if missing:
            raise SMCError(f"the model has no parameter {missing[0]!r} (and {len(missing) - 1} more) of this MaskSet; "
                           "build the masks from this model's scope")
        zero_pruned([params[n] for n in self.masks], [m.to(params[n].device) for n, m in self.masks.items()])

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Remember the model's parameters (and optimizer) for `enforce` and `clear_optimizer_state`."""
        params = _named(model)
        for n, m in self.masks.items():
            if n not in params:
                raise SMCError(f"the model has no parameter {n!r}; build the masks from this model's scope")
            if params[n].shape != m.shape:
                raise SMCError(f"mask {n!r} has shape {tuple(m.shape)} but the parameter {tuple(params[n].shape)}")
            if m.device != params[n].device:
                self.masks[n] = m.to(params[n].device)
        self._params = [params[n] for n in self.masks]
        self._optimizer = optimizer

    def enforce(self) -> None:
        """Re-zero pruned weights (after each optimizer step): one multiply per tensor, no copies."""
        if self._params is None:
            raise SMCError("MaskSet.enforce() before attach(model, optimizer); call masks.attach first")
        zero_pruned(self._params, list(self.masks.values()))

    def clear_optimizer_state(self, optimizer: torch.optim.Optimizer | None = None,
                              changed: Mapping[str, Tensor] | None = None) -> None:
        """Zero the Adam moments of the pruned weights, or of the weights flagged True in `changed`
        (e.g. RigL's regrown weights, which must start from a clean state)."""
        optimizer = optimizer or self._optimizer
        if self._params is None or optimizer is None:
            raise SMCError("clear_optimizer_state needs masks.attach(model, optimizer) first")
        with torch.no_grad():
            for (n, m), p in zip(self.masks.items(), self._params):
                state = optimizer.state.get(p, {})
                if changed is not None and n not in changed:
                    continue
                for key in _ADAM_MOMENTS:
                    if key in state:
                        if changed is None:
                            zero_pruned([state[key]], [m])
                        else:
                            state[key].masked_fill_(changed[n].to(p.device), 0.0)

    def update(self, new: Mapping[str, Tensor], optimizer: torch.optim.Optimizer | None = None) -> None:
        """Replace some masks; with an (attached) optimizer, clear the moments of every weight whose mask
        changed (newly pruned or regrown). Call `enforce()` or `apply()` before the next forward."""
        changed = {}
        for n, m in new.items():
            if n not in self.masks or self.masks[n].shape != m.shape:
                raise SMCError(f"update: {n!r} is not a mask of this MaskSet with shape {tuple(m.shape)}")
            m = m.to(self.masks[n].device, torch.bool)
            changed[n] = m ^ self.masks[n]
            self.masks[n] = m
        if (optimizer or self._optimizer) is not None and self._params is not None:
            self.clear_optimizer_state(optimizer, changed)

    # -- counting
    def numel(self) -> int:
        return sum(m.numel() for m in self.masks.values())

    def n_pruned(self) -> int:
        return sum(m.numel() - count_true(m) for m in self.masks.values())

    def sparsity(self) -> float:
        """Pruned / total over the scope."""
        return self.n_pruned() / self.numel()

    def layerwise(self):
        """Tidy per-parameter table: param, layer (transformer layer index or -1), kind, numel, sparsity."""
        import pandas as pd

        rows = [{"param": n, "layer": layer_index(n), "kind": param_kind(n), "numel": m.numel(),
                 "sparsity": 1.0 - count_true(m) / m.numel()} for n, m in self.masks.items()]
        return pd.DataFrame(rows, columns=["param", "layer", "kind", "numel", "sparsity"])

    # -- plumbing
    def names(self) -> list[str]:
        return list(self.masks)

    def to(self, device: str | torch.device) -> "MaskSet":
        """Move the masks in place (like nn.Module.to) and return self."""
        self.masks = {n: m.to(device) for n, m in self.masks.items()}
        return self

    def copy(self) -> "MaskSet":
        return MaskSet({n: m.clone() for n, m in self.masks.items()})

    def state_dict(self) -> dict[str, Tensor]:
        return {n: m.detach().cpu().clone() for n, m in self.masks.items()}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        if set(state) != set(self.masks):
            raise SMCError("mask state_dict names differ from this MaskSet's; it was saved for another scope")
        for n, m in state.items():
            self.masks[n] = m.to(self.masks[n].device, torch.bool)

    def __getitem__(self, name: str) -> Tensor:
        return self.masks[name]

    def __len__(self) -> int:
        return len(self.masks)

    def __repr__(self) -> str:
        return f"MaskSet({len(self.masks)} params, {self.numel():,} weights, sparsity {self.sparsity():.4f})"
