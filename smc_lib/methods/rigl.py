"""RigL (Evci et al. 2020, "Rigging the Lottery: Making All Tickets Winners", ICML): sparse training at a
constant sparsity. Every ΔT steps until T_end (default 75 % of the steps), each layer drops the fraction
f_t = α/2 (1 + cos(π t / T_end)) of its kept weights with the smallest |w| and regrows as many pruned weights
with the largest dense gradient |g|; regrown weights start at 0 with cleared Adam moments. The initial mask
is random (`random_rigl`), one-shot magnitude (`omp_rigl`) or SNIP (`snip_rigl`), as in SMC-Bench."""
from __future__ import annotations

import torch

from ..errors import SMCError
from ..masks import MaskSet
from ..schedules import rigl_drop_fraction, rigl_update_steps
from . import register_method, scores
from .base import DuringMethod, named_params, set_masks


def drop_and_grow(mask: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor, fraction: float) -> torch.Tensor:
    """One layer's RigL update: the new mask with as many kept weights as `mask`."""
    flat = mask.reshape(-1)
    n_kept = int(flat.sum())
    n_swap = int(fraction * n_kept)
    if n_swap == 0 or n_kept == flat.numel():
        return mask.clone()
    drop_score = weight.detach().reshape(-1).abs().float().masked_fill(~flat, -float("inf"))
    after_drop = torch.zeros_like(flat)
    after_drop[torch.topk(drop_score, n_kept - n_swap, sorted=False).indices] = True
    grow_score = grad.reshape(-1).abs().float().masked_fill(after_drop, -float("inf"))
    after_drop[torch.topk(grow_score, n_swap, sorted=False).indices] = True
    return after_drop.view_as(mask)


class RigLUpdates:
    """Hook: keeps |g| of the step before each update (in `after_backward`) and drops/grows after the step."""

    def __init__(self, alpha: float, every: int | None, end: float):
        self.alpha, self.every, self.end = alpha, every, end
        self.t_end, self.updates, self.grads = 0, set(), None

    def on_fit_start(self, state) -> None:
        self.t_end, steps = rigl_update_steps(state.total_steps, self.every, self.end)
        self.updates = set(steps)

    def after_backward(self, state) -> None:
        if state.step + 1 in self.updates:        # `step` optimizer steps done; this backward feeds step + 1
            params = named_params(state.model, state.masks)
            self.grads = {n: p.grad.detach().abs() for n, p in params.items() if p.grad is not None}

    def on_step_end(self, state) -> None:
        if state.step not in self.updates or self.grads is None:
            return
        fraction = rigl_drop_fraction(state.step, self.alpha, self.t_end)
        params = named_params(state.model, state.masks)
        new = {n: drop_and_grow(m, params[n], self.grads[n], fraction)
               for n, m in state.masks.masks.items() if n in self.grads}
        grown = {n: new[n] & ~state.masks.masks[n] for n in new}
        set_masks(state, MaskSet({**state.masks.masks, **new}))
        with torch.no_grad():
            for n, g in grown.items():
                params[n].masked_fill_(g, 0.0)
        self.grads = None

    def mask_is_final(self, state) -> bool:
        return state.step >= max(self.updates, default=0)


class RigL(DuringMethod):
    defaults = {"alpha": 0.3, "every": None, "end": 0.75, "snip_batches": 1}

    def check_options(self) -> None:
        o = self.options
        if not 0.0 < o["alpha"] <= 1.0:
            raise SMCError(f"{self.name} alpha (initial drop fraction) must be in (0, 1], got {o['alpha']}")
        if o["every"] is not None and int(o["every"]) < 1:
            raise SMCError(f"{self.name} every (ΔT) must be >= 1 step, got {o['every']}")
        if not 0.0 < o["end"] <= 1.0:
            raise SMCError(f"{self.name} end (T_end as a fraction of the steps) must be in (0, 1], got {o['end']}")

    def hooks(self, task, model, cfg, ctx) -> list:
        return [RigLUpdates(self.options["alpha"], self.options["every"], self.options["end"])]


@register_method("random_rigl")
class RandomRigL(RigL):
    score = staticmethod(scores.random_score)
    paper = "Evci et al. 2020, Rigging the Lottery (RigL), from a random mask"


@register_method("omp_rigl")
class OMPRigL(RigL):
    score = staticmethod(scores.omp_score)
    paper = "Evci et al. 2020, Rigging the Lottery (RigL), from a one-shot magnitude mask"


@register_method("snip_rigl")
class SNIPRigL(RigL):
    score = staticmethod(scores.snip_score)
    paper = "Evci et al. 2020, Rigging the Lottery (RigL), from a SNIP mask (Lee et al. 2019)"
