"""What every sparsification method shares: options, scope, and one base class per timing.

A method file only says *what* to score (or which hooks to run); *when* is its base class:
- `DenseMethod`: fine-tune without pruning (the reference every sparse result is compared with).
- `BeforeMethod`: score the pretrained weights with the class's `score`, prune, fine-tune sparse (SNIP, Lee et
  al. 2019; OMP / random before training, Liu, Chen et al. 2023). `AfterMethod`: prune the dense fine-tuned
  model (`ctx.dense_model()`), retrain with the full schedule (Han et al. 2015).
- timing `iterative` (LTH / IMP, Frankle & Carbin 2019) is the only one of its kind: see lth.py.
- `DuringMethod`: the mask changes inside `fit` through hooks (GMP, RigL, oBERT).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import torch
from torch import nn

from ..errors import SMCError, check_sparsity, unknown
from ..masks import MaskSet
from ..scope import SCOPES, prunable
from ..train import FitResult, TrainConfig, fit, resolve_device
from . import scores
from .scores import prune  # noqa: F401  (the Python API's `smc_lib.prune`)

TIMINGS = ("dense", "before", "after", "iterative", "during")


@dataclass
class MethodContext:
    """What a method may need beyond the task and the pretrained model (see docs/ARCHITECTURE.md)."""

    dense_model: Callable[[], nn.Module] | None = None   # a fresh copy of the dense fine-tuned model
    checkpoint_dir: Path | None = None
    scope_kwargs: dict = field(default_factory=dict)
    # (trained model, masks, rewind state) of the same run at an earlier sparsity: an IMP chain's round
    previous: Callable[[float], tuple[nn.Module, MaskSet, dict | None]] | None = None


class Method:
    """A registered sparsification strategy. Subclasses set `timing`, `paper` and their option defaults."""

    name: ClassVar[str] = ""
    timing: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    version: ClassVar[int] = 1            # part of every run key: bump it when the method's behaviour changes
    keeps_weights: ClassVar[bool] = False  # its trained weights and mask are artifacts other runs start from
    default_scope: ClassVar[str | None] = None   # the method's own default scope (else the task's)

    def __init__(self, sparsity: float, scope: str | None = None, layerwise: bool = False, **options: Any):
        self.sparsity = check_sparsity(sparsity)
        scope = scope or self.default_scope or "all"
        if scope not in SCOPES:
            raise unknown("scope", scope, list(SCOPES))
        extra = sorted(set(options) - set(self.defaults))
        if extra:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise SMCError(f"method {self.name!r} has no option {extra[0]!r}; its options are: {known}")
        self.scope, self.layerwise = scope, bool(layerwise)
        self.options = {**self.defaults, **options}
        self.check_options()

    def check_options(self) -> None:
        """Validate `self.options` (raise SMCError); called from __init__, before any work."""

    def check_params(self, params: dict[str, nn.Parameter]) -> None:
        """Validate the scope against the method (e.g. oBERT's block size); called before any training."""

    def params(self, model: nn.Module, ctx: MethodContext) -> dict[str, nn.Parameter]:
        params = prunable(model, self.scope, **ctx.scope_kwargs)
        self.check_params(params)
        return params

    def run(self, task, model: nn.Module, cfg: TrainConfig, ctx: MethodContext) -> tuple[FitResult, MaskSet]:
        raise NotImplementedError

    # shared helpers
    def fit(self, task, model: nn.Module, cfg: TrainConfig, ctx: MethodContext, masks: MaskSet | None,
            hooks: Sequence = (), tag: str = "fit") -> FitResult:
        """`train.fit` with this run's checkpoint file; with `cfg.distill` the dense fine-tuned model is the
        teacher (knowledge distillation as in oBERT, Kurtic et al. 2022)."""
        ckpt = ctx.checkpoint_dir / f"{tag}.ckpt" if ctx.checkpoint_dir is not None else None
        teacher = None
        if cfg.distill:
            if ctx.dense_model is None:
                raise SMCError("knowledge distillation (cfg.distill) needs the dense fine-tuned teacher: give "
                               "MethodContext(dense_model=...) (smc run does), or set distill to None")
            teacher = ctx.dense_model()
        return fit(task, model, cfg, masks=masks, hooks=hooks, teacher=teacher, checkpoint=ckpt)

    def dense_model(self, task, model: nn.Module, cfg: TrainConfig, ctx: MethodContext) -> nn.Module:
        """The dense fine-tuned model: the shared cached run if the context has one, else fine-tune a copy."""
        if ctx.dense_model is not None:
            return ctx.dense_model()
        dense_cfg = dataclasses.replace(cfg, distill=None)
        return self.fit(task, copy.deepcopy(model), dense_cfg, ctx, None, tag="dense").model

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return (f"{type(self).__name__}(sparsity={self.sparsity}, scope={self.scope!r}, "
                f"layerwise={self.layerwise}{opts})")


class DenseMethod(Method):
    timing = "dense"
    keeps_weights = True

    def check_options(self) -> None:
        if self.sparsity != 0.0:
            raise SMCError(f"method 'dense' trains without pruning; use sparsity 0, not {self.sparsity}")

    def run(self, task, model, cfg, ctx):
        masks = MaskSet.dense(self.params(model, ctx))
        return self.fit(task, model, dataclasses.replace(cfg, distill=None), ctx, None), masks


class OneShotMethod(Method):
    """Score once with the class's `score` function (`scores.omp_score`, ...), prune to the target (global or
    layer-wise), then train the sparse model with `cfg`. The timing is the subclass: `BeforeMethod` scores the
    pretrained weights, `AfterMethod` the dense fine-tuned ones."""

    score: ClassVar[Callable[..., dict[str, torch.Tensor]]] = staticmethod(scores.omp_score)

    def initial_masks(self, task, model: nn.Module, cfg: TrainConfig, ctx: MethodContext) -> MaskSet:
        params = self.params(model, ctx)
        model.to(resolve_device(cfg.device))
        s = type(self).score(params, task=task, model=model, batch_size=cfg.batch_size, seed=cfg.seed,
                             device=resolve_device(cfg.device), **self.options)
        return MaskSet.from_scores(s, self.sparsity, self.layerwise)

    def start(self, task, model: nn.Module, cfg: TrainConfig, ctx: MethodContext) -> nn.Module:
        """The weights that are scored and then trained sparse."""
        return model

    def run(self, task, model, cfg, ctx):
        model = self.start(task, model, cfg, ctx)
        masks = self.initial_masks(task, model, cfg, ctx)
        masks.apply(model)
        return self.fit(task, model, cfg, ctx, masks), masks


class BeforeMethod(OneShotMethod):
    """Prune the pretrained weights, then fine-tune sparse (SNIP, OMP / random before training)."""

    timing = "before"


class AfterMethod(OneShotMethod):
    """Prune the dense fine-tuned model (`ctx.dense_model()`), then retrain with the full schedule (Han et al.)."""

    timing = "after"

    def start(self, task, model, cfg, ctx):
        return self.dense_model(task, model, cfg, ctx)


class DuringMethod(OneShotMethod):
    """Start from `initial_masks` (the `score`'s mask for RigL, dense for gradual pruning) and let `hooks()`
    change the mask inside `fit`."""

    timing = "during"

    def hooks(self, task, model: nn.Module, cfg: TrainConfig, ctx: MethodContext) -> list:
        raise NotImplementedError

    def run(self, task, model, cfg, ctx):
        masks = self.initial_masks(task, model, cfg, ctx)
        masks.apply(model)
        return self.fit(task, model, cfg, ctx, masks, self.hooks(task, model, cfg, ctx)), masks


def set_masks(state, new: MaskSet) -> None:
    """Swap in a new mask mid-training: moments of changed weights cleared, pruned weights zeroed."""
    state.masks.update(new.masks, state.optimizer)
    state.masks.apply(state.model)


def named_params(model: nn.Module, masks: MaskSet) -> dict[str, nn.Parameter]:
    """The model's parameters under the mask's names."""
    all_params = dict(model.named_parameters())
    return {n: all_params[n] for n in masks.names()}
