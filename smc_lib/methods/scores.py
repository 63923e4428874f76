"""Score functions: `{param_name: tensor of scores}`, higher = more important = kept.

They are plain functions so a method is "a score + a timing"; `MaskSet.from_scores` turns scores into a
global or layer-wise mask.

- magnitude |w| (Han et al. 2015; one-shot magnitude pruning, OMP).
- random: seeded uniform scores (the random-pruning baseline of Liu et al. 2022).
- snip |ḡ ⊙ w|, ḡ the loss gradient averaged over N batches (Lee et al. 2019, "SNIP: Single-shot network
  pruning based on connection sensitivity").

oBERT's second-order saliency, its block Fisher and the OBS update live with the method, in `obert.py`.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterator, Mapping

import torch
from torch import Tensor

from ..errors import SMCError, check_sparsity, unknown
from ..masks import MaskSet
from ..scope import prunable
from ..train import TrainConfig, resolve_device

Params = Mapping[str, Tensor]


def magnitude(params: Params) -> dict[str, Tensor]:
    """|w|: the one-shot magnitude (OMP) score."""
    return {n: p.detach().abs() for n, p in params.items()}


def random(params: Params, seed: int = 0) -> dict[str, Tensor]:
    """Uniform random scores from a CPU generator, so the mask is the same on every device."""
    gen = torch.Generator().manual_seed(int(seed))
    return {n: torch.rand(p.shape, generator=gen).to(p.device) for n, p in params.items()}


def omp_score(params: Params, **_) -> dict[str, Tensor]:
    """One-shot magnitude (OMP): |w|."""
    return magnitude(params)


def random_score(params: Params, seed: int = 0, **_) -> dict[str, Tensor]:
    """Random pruning: seeded uniform scores."""
    return random(params, seed=seed)


def snip_score(params: Params, task=None, model=None, batch_size: int = 16, seed: int = 0, snip_batches: int = 1,
               device: str | torch.device = "cpu", **_) -> dict[str, Tensor]:
    """SNIP: |ḡ ⊙ w| from `snip_batches` gradient batches of `task`."""
    if task is None or model is None:
        raise SMCError("SNIP scores need the task whose loss gives the gradients (task=..., model=...)")
    return snip(task, model, params, n_batches=int(snip_batches), batch_size=batch_size, seed=seed, device=device)


ONE_SHOT = {"omp": omp_score, "random": random_score, "snip": snip_score}   # `smc_lib.prune(criterion=...)`


# ---------------------------------------------------------------------------------------------- gradients
def _to_device(batch, device):
    from ..train import to_device

    return to_device(batch, device)


def gradient_passes(task, model: torch.nn.Module, n: int, batch_size: int, seed: int = 0,
                    device: str | torch.device = "cpu") -> Iterator[int]:
    """Run `n` forward/backward passes over shuffled training batches (cycling epochs); yields after each
    with fresh gradients in `p.grad`. Dropout is off (eval mode) so the gradients are those of the weights."""
    if n < 1:
        raise SMCError(f"need at least one gradient batch, got {n}")
    was_training = model.training
    model.eval()
    try:
        done = 0
        for epoch in itertools.count():
            seen = 0
            for batch in task.batches("train", batch_size, shuffle=True, seed=seed + epoch):
                seen += 1
                model.zero_grad(set_to_none=True)
                task.loss(model, _to_device(batch, device)).backward()
                yield done
                done += 1
                if done == n:
                    return
            if seen == 0:
                raise SMCError(f"task {getattr(task, 'name', task)!r} has no training batches to score with")
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)


def snip(task, model: torch.nn.Module, params: Params, n_batches: int = 1, batch_size: int = 16,
         seed: int = 0, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """SNIP connection sensitivity |ḡ ⊙ w| with ḡ the mean gradient over `n_batches` training batches."""
    acc = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    for _ in gradient_passes(task, model, n_batches, batch_size, seed, device):
        for n, p in params.items():
            if p.grad is not None:
                acc[n] += p.grad.float()
    return {n: (acc[n] / n_batches * params[n].detach().float()).abs() for n in params}


# ------------------------------------------------------------------------------------------- the Python API
def prune(model: torch.nn.Module, sparsity: float, criterion: str = "omp", scope: str = "all", layerwise: bool = False,
          task=None, cfg: TrainConfig | None = None, **scope_kwargs: Any) -> MaskSet:
    """One-shot pruning of `model` in place (the Python API's `smc_lib.prune`): score by `criterion`
    (`ONE_SHOT`: omp, random, snip — snip needs the `task`), keep the top 1 - sparsity over `scope`,
    zero the rest."""
    check_sparsity(sparsity)
    if criterion not in ONE_SHOT:
        raise unknown("pruning criterion", criterion, list(ONE_SHOT))
    params = prunable(model, scope, **scope_kwargs)
    cfg = cfg or TrainConfig(device=str(next(model.parameters()).device))
    s = ONE_SHOT[criterion](params, task=task, model=model, batch_size=cfg.batch_size, seed=cfg.seed,
                            device=resolve_device(cfg.device))
    masks = MaskSet.from_scores(s, sparsity, layerwise)
    masks.apply(model)
    return masks
