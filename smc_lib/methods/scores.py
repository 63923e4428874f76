"""Score functions: `{param_name: tensor of scores}`, higher = more important = kept.

They are plain functions so a method is "a score + a timing"; `MaskSet.from_scores` turns scores into a
global or layer-wise mask.

- magnitude |w| (Han et al. 2015; one-shot magnitude pruning, OMP).
- random: seeded uniform scores (the random-pruning baseline of Liu et al. 2022).
- snip |ḡ ⊙ w|, ḡ the loss gradient averaged over N batches (Lee et al. 2019, "SNIP: Single-shot network
  pruning based on connection sensitivity").
- obert (Kurtic et al. 2022, "The Optimal BERT Surgeon"): w² / (2 [F⁻¹]ᵢᵢ) with F the damped empirical
  block-Fisher, F_b = λI + (1/m) Σ g_b g_bᵀ over blocks of B consecutive weights, and the OBS update of the
  remaining weights of each block, δw = -F⁻¹ P (Pᵀ F⁻¹ P)⁻¹ Pᵀ w for its pruned set P.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterator, Mapping

import torch
from torch import Tensor
from tqdm import tqdm

from ..errors import SMCError, check_sparsity, unknown
from ..linalg import add_gram, map_blocks, one_cpu_thread, safe_cholesky, spd_inverse_
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


# ------------------------------------------------------------------------------------------------ oBERT
def check_block_size(params: Params, block_size: int) -> None:
    """oBERT's block size: a positive integer (a parameter it does not tile is zero-padded, as SparseML does)."""
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise SMCError(f"obert block_size must be a positive integer, got {block_size!r}")


def _padded(flat: Tensor, size: int) -> Tensor:
    """`flat` ([..., numel]) zero-padded on its last dim to `size` (the blocks' span); a view when it fits."""
    extra = size - flat.shape[-1]
    return flat if extra == 0 else torch.nn.functional.pad(flat, (0, extra))


class BlockFisher:
    """Σ g_b g_bᵀ over blocks b of `block_size` consecutive weights of one flattened parameter, accumulated
    from gradients as they stream in; `inverse()` turns it in place into (λI + (1/m) Σ g gᵀ)⁻¹ per block.
    A parameter the blocks do not tile is zero-padded at its end (SparseML's choice): the padding's
    gradients are 0, so its rows of F are λI and never touch the real weights."""

    def __init__(self, numel: int, block_size: int, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32):
        check_block_size({}, block_size)
        self.numel, self.block_size, self.n_blocks = numel, block_size, -(-numel // block_size)
        self.matrix = torch.empty(self.n_blocks, block_size, block_size, device=device, dtype=dtype)
        self.count = 0
        self.inverted = False

    def add(self, grads: Tensor) -> None:
        """Accumulate k gradients, shape (k, numel), with one batched matmul."""
        g = _padded(grads, self.n_blocks * self.block_size)
        g = g.reshape(grads.shape[0], self.n_blocks, self.block_size).to(self.matrix.dtype).transpose(0, 1)
        add_gram(self.matrix, g.detach(), accumulate=self.count > 0)                  # first add: overwrite
        self.count += grads.shape[0]

    def inverse(self, damping: float = 1e-7, chunk: int = 2048) -> Tensor:
        """(nb, B, B) inverse of λI + Σ g gᵀ / m per block, in place, a chunk of blocks at a time.
        A float32 Fisher holds λ only to ~1e-7 of its largest eigenvalue: when m < B and λ is tiny the
        inverse is that inexact whatever the factorization; use dtype=float64 there (2× memory)."""
        if self.inverted:
            return self.matrix
        if self.count == 0:
            raise SMCError("the block Fisher needs at least one gradient before it can be inverted")
        def invert(lo: int, hi: int) -> None:                   # (S/m + λI)⁻¹ = m (S + mλI)⁻¹
            f = self.matrix[lo:hi]
            f.diagonal(dim1=1, dim2=2).add_(self.count * damping)
            spd_inverse_(f, scale=self.count)
        map_blocks(invert, self.n_blocks, chunk, self.matrix.device)
        self.inverted = True
        return self.matrix


def fisher_inverse(grads: Tensor, block_size: int = 50, damping: float = 1e-7, chunk: int = 2048,
                   dtype: torch.dtype = torch.float32) -> Tensor:
    """Block-Fisher inverse from m gradients of shape (m, d): (d / B, B, B)."""
    fisher = BlockFisher(grads.shape[1], block_size, grads.device, dtype)
    fisher.add(grads)
    return fisher.inverse(damping, chunk)


def block_fishers(task, model: torch.nn.Module, params: Params, m: int, batch_size: int, block_size: int = 50,
                  seed: int = 0, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                  progress: bool = True, buffer: int = 32, masks: Params | None = None) -> dict[str, BlockFisher]:
    """Σ g gᵀ per block of every parameter from `m` gradients of `model`, flushed `buffer` gradients at a time
    (one batched matmul each), so memory is d·B for the Fisher plus buffer·d for the pending gradients.
    With `masks` the gradients of pruned weights are zeroed, as in Kurtic et al.: a pruned weight is a
    constant 0, so it has no gradient, and a later pruning step's saliencies see the right diagonal."""
    check_block_size(params, block_size)
    fishers = {n: BlockFisher(p.numel(), block_size, p.device, dtype) for n, p in params.items()}
    pending: dict[str, list] = {n: [] for n in params}
    passes = gradient_passes(task, model, m, batch_size, seed=seed, device=device)
    for i in tqdm(passes, total=m, desc="oBERT gradients", leave=False, disable=not progress):
        for n, p in params.items():
            g = torch.zeros(p.numel(), device=p.device) if p.grad is None else p.grad.reshape(-1)
            pending[n].append(g * masks[n].reshape(-1) if masks is not None and n in masks else g)
            if len(pending[n]) == buffer or i == m - 1:
                fishers[n].add(torch.stack(pending[n]))
                pending[n].clear()
    return fishers


def obert(task, model: torch.nn.Module, params: Params, grads: int = 128, batch_size: int = 16,
          block_size: int = 50, damping: float = 1e-7, seed: int = 0,
          device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """oBERT saliency w² / (2 [F⁻¹]ᵢᵢ) of every weight, from `grads` gradients of `task` (Kurtic et al. 2022)."""
    fishers = block_fishers(task, model, params, grads, batch_size, block_size, seed, device, progress=False)
    return {n: obert_scores(p, fishers[n].inverse(damping)) for n, p in params.items()}


def obert_scores(weight: Tensor, finv: Tensor) -> Tensor:
    """Single-weight OBS saliency w² / (2 [F⁻¹]ᵢᵢ), same shape as `weight` (block padding dropped)."""
    diag = torch.diagonal(finv, dim1=1, dim2=2).reshape(-1)[: weight.numel()].reshape(weight.shape)
    return weight.detach().float() ** 2 / (2.0 * diag)


def obs_update(weight: Tensor, finv: Tensor, pruned: Tensor, chunk: int = 2048) -> Tensor:
    """δw = -F⁻¹ P (Pᵀ F⁻¹ P)⁻¹ Pᵀ w in every block at once, P = the block's `pruned` weights (all of them,
    earlier ones included, so they stay 0). Blocks are solved together by padding: rows/columns outside P
    are replaced by the identity, which leaves the P-system unchanged and gives x = 0 off P."""
    nb, b, _ = finv.shape
    w = _padded(weight.detach().reshape(-1), nb * b).reshape(nb, b)
    mask = _padded(pruned.reshape(-1).float(), nb * b).reshape(nb, b)   # padding: never pruned, never moved
    out = torch.empty(nb, b, dtype=torch.float32, device=weight.device)

    def update(lo: int, hi: int) -> None:
        fi = finv[lo:hi].double()
        p = mask[lo:hi].double()
        a = fi * p[:, :, None] * p[:, None, :] + torch.diag_embed(1.0 - p)
        chol = safe_cholesky(a).tril_()                       # the factor is the lower triangle
        with one_cpu_thread(chol.device):
            x = torch.cholesky_solve((w[lo:hi].double() * p).unsqueeze(-1), chol)
        out[lo:hi] = -(fi @ x).squeeze(-1).float()
    map_blocks(update, nb, chunk, weight.device)
    return out.reshape(-1)[: weight.numel()].reshape(weight.shape)


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
