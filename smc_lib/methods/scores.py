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

import contextlib
import itertools
import warnings
from typing import Iterator, Mapping

import torch
from torch import Tensor
from tqdm import tqdm

from ..errors import SMCError

Params = Mapping[str, Tensor]


def magnitude(params: Params) -> dict[str, Tensor]:
    """|w|: the one-shot magnitude (OMP) score."""
    return {n: p.detach().abs() for n, p in params.items()}


def random(params: Params, seed: int = 0) -> dict[str, Tensor]:
    """Uniform random scores from a CPU generator, so the mask is the same on every device."""
    gen = torch.Generator().manual_seed(int(seed))
    return {n: torch.rand(p.shape, generator=gen).to(p.device) for n, p in params.items()}


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
    """oBERT's blocks tile each flattened parameter: refuse a size that does not, before any work."""
    if not isinstance(block_size, int) or block_size < 1:
        raise SMCError(f"obert block_size must be a positive integer, got {block_size!r}")
    bad = [(n, p.numel()) for n, p in params.items() if p.numel() % block_size]
    if bad:
        sizes = [p.numel() for p in params.values()]
        ok = [b for b in range(min(block_size, 64), 0, -1) if all(s % b == 0 for s in sizes)][0]
        name, numel = bad[0]
        raise SMCError(f"obert block_size {block_size} does not tile {name} ({numel} weights) nor "
                       f"{len(bad) - 1} other parameters; use block_size={ok}, which divides every one in scope")


class BlockFisher:
    """Σ g_b g_bᵀ over blocks b of `block_size` consecutive weights of one flattened parameter, accumulated
    from gradients as they stream in; `inverse()` turns it in place into (λI + (1/m) Σ g gᵀ)⁻¹ per block."""

    def __init__(self, numel: int, block_size: int, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32):
        if numel % block_size:
            raise SMCError(f"block size {block_size} does not tile a parameter of {numel} weights")
        self.block_size, self.n_blocks = block_size, numel // block_size
        self.matrix = torch.empty(self.n_blocks, block_size, block_size, device=device, dtype=dtype)
        self.count = 0
        self.inverted = False

    def add(self, grads: Tensor) -> None:
        """Accumulate k gradients, shape (k, numel), with one batched matmul."""
        g = grads.reshape(grads.shape[0], self.n_blocks, self.block_size).to(self.matrix.dtype).transpose(0, 1)
        self.matrix.baddbmm_(g.transpose(1, 2), g, beta=1.0 if self.count else 0.0)   # first add: overwrite
        self.count += grads.shape[0]

    def inverse(self, damping: float = 1e-7, chunk: int = 2048) -> Tensor:
        """(nb, B, B) inverse of λI + Σ g gᵀ / m per block, in place, a chunk of blocks at a time.
        A float32 Fisher holds λ only to ~1e-7 of its largest eigenvalue: when m < B and λ is tiny the
        inverse is that inexact whatever the factorization; use dtype=float64 there (2× memory)."""
        if self.inverted:
            return self.matrix
        if self.count == 0:
            raise SMCError("the block Fisher needs at least one gradient before it can be inverted")
        for lo in range(0, self.n_blocks, chunk):                 # (S/m + λI)⁻¹ = m (S + mλI)⁻¹
            f = self.matrix[lo:lo + chunk]
            f.diagonal(dim1=1, dim2=2).add_(self.count * damping)
            spd_inverse(f, out=f, scale=self.count)
        self.inverted = True
        return self.matrix


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device):
    """Batched small LAPACK calls on CPU: torch 2.13's multi-threaded batched triangular solve was up to 70×
    slower than one thread on our 2 shared cores (measured), so run them on one."""
    n = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _cholesky(f: Tensor) -> tuple[Tensor, Tensor]:
    with _one_cpu_thread(f.device):
        return torch.linalg.cholesky_ex(f)


def _inverse_from_cholesky(chol: Tensor, out: Tensor | None = None, scale: float = 1.0) -> Tensor:
    """F⁻¹ = L⁻ᵀ L⁻¹, L⁻ᵀ from one batched triangular solve X Lᵀ = I (the fastest batched CPU route we
    timed; torch's cholesky_inverse is slower)."""
    eye = torch.eye(chol.shape[-1], dtype=chol.dtype, device=chol.device)
    with _one_cpu_thread(chol.device):
        chol_inv_t = torch.linalg.solve_triangular(chol.mT, eye.expand_as(chol), upper=True, left=False)
    if out is None:
        return torch.bmm(chol_inv_t, chol_inv_t.mT).mul_(scale)
    return torch.baddbmm(out, chol_inv_t, chol_inv_t.mT, beta=0.0, alpha=scale, out=out)


def _safe_cholesky(f: Tensor) -> Tensor:
    """Cholesky of a batch of SPD matrices. Σ g gᵀ is summed in float32 (the bulk of the work); when its
    rounding outweighs a tiny λ a block can come out indefinite, and only those blocks get a jitter of
    10⁻⁸…10⁻⁴ × their mean diagonal added (the standard PSD-safe Cholesky), with a warning."""
    chol, info = _cholesky(f)
    bad = info > 0
    scale = torch.diagonal(f, dim1=1, dim2=2).mean(-1)
    eye = torch.eye(f.shape[-1], dtype=f.dtype, device=f.device)
    for jitter in (1e-8, 1e-6, 1e-4):
        if not bool(bad.any()):
            return chol
        warnings.warn(f"{int(bad.sum())} Fisher blocks not positive definite; adding {jitter:g} × their mean "
                      "diagonal (raise obert damping to avoid this)", stacklevel=4)
        fixed, info = _cholesky(f[bad] + jitter * scale[bad, None, None] * eye)
        chol[bad] = fixed
        bad = bad.clone()
        bad[bad.clone()] = info > 0
    if bool(bad.any()):
        raise SMCError("block Fisher not positive definite even with jitter; raise obert damping (e.g. 1e-4)")
    return chol


def spd_inverse(f: Tensor, out: Tensor | None = None, scale: float = 1.0, max_pivot_ratio: float = 1e3) -> Tensor:
    """Batched inverse of SPD float32 blocks: Cholesky in float32, redone in float64 for the blocks where
    float32 fails or is shaky (pivot ratio max L_jj² / min L_jj², a lower bound on the condition number,
    above `max_pivot_ratio`, where float32 could lose more than ~1e-4 relative accuracy). Returns
    `scale` · f⁻¹; `out` may be `f`."""
    if f.dtype == torch.float64:
        return _inverse_from_cholesky(_safe_cholesky(f), out=out, scale=scale)
    chol, info = _cholesky(f)
    pivots = torch.diagonal(chol, dim1=1, dim2=2) ** 2
    shaky = (info > 0) | ~(pivots.amax(-1) <= max_pivot_ratio * pivots.amin(-1))
    exact = _inverse_from_cholesky(_safe_cholesky(f[shaky].double()), scale=scale).float() \
        if bool(shaky.any()) else None
    inv = _inverse_from_cholesky(chol, out=out, scale=scale)
    if exact is not None:
        inv[shaky] = exact
    return inv


def fisher_inverse(grads: Tensor, block_size: int = 50, damping: float = 1e-7, chunk: int = 2048,
                   dtype: torch.dtype = torch.float32) -> Tensor:
    """Block-Fisher inverse from m gradients of shape (m, d): (d / B, B, B)."""
    fisher = BlockFisher(grads.shape[1], block_size, grads.device, dtype)
    fisher.add(grads)
    return fisher.inverse(damping, chunk)


def block_fishers(task, model: torch.nn.Module, params: Params, m: int, batch_size: int, block_size: int = 50,
                  seed: int = 0, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                  progress: bool = True, buffer: int = 32) -> dict[str, BlockFisher]:
    """Σ g gᵀ per block of every parameter from `m` gradients of `model`, flushed `buffer` gradients at a time
    (one batched matmul each), so memory is d·B for the Fisher plus buffer·d for the pending gradients."""
    check_block_size(params, block_size)
    fishers = {n: BlockFisher(p.numel(), block_size, p.device, dtype) for n, p in params.items()}
    pending: dict[str, list] = {n: [] for n in params}
    passes = gradient_passes(task, model, m, batch_size, seed=seed, device=device)
    for i in tqdm(passes, total=m, desc="oBERT gradients", leave=False, disable=not progress):
        for n, p in params.items():
            pending[n].append(torch.zeros(p.numel(), device=p.device) if p.grad is None else p.grad.reshape(-1))
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
    """Single-weight OBS saliency w² / (2 [F⁻¹]ᵢᵢ), same shape as `weight`."""
    diag = torch.diagonal(finv, dim1=1, dim2=2).reshape(weight.shape)
    return weight.detach().float() ** 2 / (2.0 * diag)


def obs_update(weight: Tensor, finv: Tensor, pruned: Tensor, chunk: int = 2048) -> Tensor:
    """δw = -F⁻¹ P (Pᵀ F⁻¹ P)⁻¹ Pᵀ w in every block at once, P = the block's `pruned` weights (all of them,
    earlier ones included, so they stay 0). Blocks are solved together by padding: rows/columns outside P
    are replaced by the identity, which leaves the P-system unchanged and gives x = 0 off P."""
    nb, b, _ = finv.shape
    w = weight.detach().reshape(nb, b)
    mask = pruned.reshape(nb, b)
    out = torch.empty(nb, b, dtype=torch.float32, device=weight.device)
    for lo in range(0, nb, chunk):
        fi = finv[lo:lo + chunk].double()
        p = mask[lo:lo + chunk].double()
        a = fi * p[:, :, None] * p[:, None, :] + torch.diag_embed(1.0 - p)
        chol = _safe_cholesky(a)
        with _one_cpu_thread(chol.device):
            x = torch.cholesky_solve((w[lo:lo + chunk].double() * p).unsqueeze(-1), chol)
        out[lo:lo + chunk] = -(fi @ x).squeeze(-1).float()
    return out.reshape(weight.shape)
