"""Gradual magnitude pruning (GMP; Zhu & Gupta 2017, "To prune, or not to prune: exploring the efficacy of
pruning for model compression"): during fine-tuning, every `frequency` steps from `start` to `end` of the
run (default 10 % → 80 %), prune by global magnitude to the cubic schedule
s_t = s_f + (s_i - s_f)(1 - (t - t0)/(nΔt))³; the last update reaches the target exactly. `mask_is_final`
is False before it, so `fit` only reports (and selects the best of) models at the final sparsity.
Option `lr_rewind` restarts the learning-rate schedule at each pruning step (as oBERT, Kurtic et al. 2022)."""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import SMCError
from ..masks import MaskSet
from ..schedules import GMPSchedule
from . import register_method
from .base import DuringMethod, named_params, set_masks


class GradualPruning:
    """Hook: at each scheduled step, `prune(state, sparsity) -> MaskSet` picks the new mask."""

    def __init__(self, final: float, prune: Callable[[object, float], MaskSet], start: float = 0.1,
                 end: float = 0.8, frequency: int | None = None, initial: float = 0.0, lr_rewind: bool = False):
        self.final, self.prune, self.lr_rewind = final, prune, lr_rewind
        self.start, self.end, self.frequency, self.initial = start, end, frequency, initial
        self.schedule: GMPSchedule | None = None
        self.updates: set[int] = set()

    def on_fit_start(self, state) -> None:
        self.schedule = GMPSchedule(self.final, state.total_steps, self.initial, self.start, self.end,
                                    self.frequency)
        self.updates = set(self.schedule.update_steps())

    def on_step_end(self, state) -> None:
        target = self.schedule.sparsity_at(state.step)
        if state.step in self.updates and target > 0.0:    # s_i = 0 at t0 prunes nothing: skip the work
            set_masks(state, self.prune(state, target))
            if self.lr_rewind:                             # oBERT: the LR schedule restarts at every pruning step
                later = [t for t in self.updates if t > state.step]
                state.restart_schedule(min(later) - state.step if later else None)

    def mask_is_final(self, state) -> bool:
        return self.schedule is not None and state.step >= self.schedule.t_end


class GradualMethod(DuringMethod):
    """Base of gradual pruning methods: dense start, `GradualPruning` with `prune_step` as the criterion."""

    defaults = {"start": 0.1, "end": 0.8, "frequency": None, "initial": 0.0, "lr_rewind": False}

    def check_options(self) -> None:
        o = self.options
        if o["frequency"] is not None and int(o["frequency"]) < 1:
            raise SMCError(f"{self.name} frequency must be >= 1 step, got {o['frequency']}")
        if not 0.0 <= o["start"] <= o["end"] <= 1.0:
            raise SMCError(f"{self.name} needs 0 <= start <= end <= 1 (fractions of the steps), got "
                           f"start={o['start']} end={o['end']}")
        if not 0.0 <= o["initial"] <= self.sparsity:
            raise SMCError(f"{self.name} initial sparsity must be in [0, {self.sparsity}], got {o['initial']}")

    def initial_masks(self, task, model, cfg, ctx) -> MaskSet:
        return MaskSet.dense(self.params(model, ctx))

    def prune_step(self, state, sparsity: float) -> MaskSet:
        raise NotImplementedError

    def hooks(self, task, model, cfg, ctx) -> list:
        o = self.options
        return [GradualPruning(self.sparsity, self.prune_step, o["start"], o["end"], o["frequency"], o["initial"],
                               bool(o["lr_rewind"]))]


@register_method("gmp")
class GMP(GradualMethod):
    paper = "Zhu & Gupta 2017, To prune, or not to prune (gradual magnitude pruning, cubic schedule)"

    def prune_step(self, state, sparsity: float) -> MaskSet:
        weights = {n: p.detach() for n, p in named_params(state.model, state.masks).items()}
        return MaskSet.from_scores(weights, sparsity, self.layerwise, keep=state.masks, transform=torch.abs)
