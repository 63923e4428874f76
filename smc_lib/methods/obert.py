"""oBERT, the Optimal BERT Surgeon (Kurtic et al. 2022, "The Optimal BERT Surgeon: Scalable and Accurate
Second-Order Pruning for Large Language Models", EMNLP), beside its paper:

- the damped empirical block-Fisher of m gradients, F_b = λI + (1/m) Σ g_b g_bᵀ over blocks b of B consecutive
  weights (default B = 50, λ = 1e-7, m = 128), its gradients masked (a pruned weight has none) and a
  parameter the blocks do not tile zero-padded, as SparseML does: `BlockFisher`, `block_fishers`;
- the OBS saliency of a single weight, ρᵢ = wᵢ² / (2 [F⁻¹]ᵢᵢ), ranked globally: `obert_scores`;
- the OBS update of the survivors of each block for its pruned set P, δw = -F⁻¹ P (Pᵀ F⁻¹ P)⁻¹ Pᵀ w:
  `obs_update`.

`OBERT` prunes gradually on the cubic schedule (as GMP), each pruning step a fresh Fisher from m new
gradients (the official SMC-Bench run has B = 1 and no update); `obert_imp` runs the same step inside IMP
rounds (Appendix C.2). The default scope is `encoder`. Memory: d·B floats for the Fisher inverses of d
weights in scope. The batched block linear algebra (Gram products, Cholesky, SPD inverse) is `smc_lib.linalg`,
whose CPU fast path has a plain-torch reference beside it."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor
from tqdm import tqdm

from ..errors import SMCError
from ..linalg import add_gram, map_blocks, one_cpu_thread, safe_cholesky, spd_inverse_
from ..masks import MaskSet
from . import register_method, scores
from .base import named_params
from .gmp import GradualMethod

Params = Mapping[str, Tensor]
DEFAULTS = {"block_size": 50, "damping": 1e-7, "grads": 128, "grad_batch_size": None, "fisher_dtype": "float32"}


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
    passes = scores.gradient_passes(task, model, m, batch_size, seed=seed, device=device)
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


def prune_step(task, model: torch.nn.Module, params: Params, masks: MaskSet | None, target: float,
               layerwise: bool, options: dict, batch_size: int, seed: int, device: torch.device,
               progress: bool = True) -> MaskSet:
    """One oBERT pruning step to `target`: Fisher inverses from `options["grads"]` masked gradients, the mask of
    the highest saliencies (weights pruned in `masks` stay pruned), and the OBS update of `params` in place."""
    o = options
    fishers = block_fishers(task, model, params, int(o["grads"]), o["grad_batch_size"] or batch_size,
                            o["block_size"], seed=seed, device=device, dtype=getattr(torch, o["fisher_dtype"]),
                            progress=progress, masks=masks.masks if masks is not None else None)
    finv = {n: f.inverse(o["damping"]) for n, f in fishers.items()}
    new = MaskSet.from_scores({n: obert_scores(p, finv[n]) for n, p in params.items()}, target, layerwise,
                              keep=masks)
    with torch.no_grad():
        for n, p in params.items():
            p.add_(obs_update(p, finv[n], ~new.masks[n]).to(p.dtype))
    return new


def check_options(o: dict) -> None:
    """oBERT's own options, one clear line each, before any training."""
    check_block_size({}, o["block_size"])
    if not o["damping"] > 0:
        raise SMCError(f"obert damping must be > 0, got {o['damping']}; the paper uses 1e-7")
    if int(o["grads"]) < 1:
        raise SMCError(f"obert grads (m, gradients per Fisher) must be >= 1, got {o['grads']}")
    if o["fisher_dtype"] not in ("float32", "float64"):
        raise SMCError(f"obert fisher_dtype must be float32 or float64 (exact when grads < block_size), "
                       f"got {o['fisher_dtype']!r}")


# ------------------------------------------------------------------------------------------------ the method
@register_method("obert")
class OBERT(GradualMethod):
    default_scope = "encoder"      # Appendix C / Kurtic et al.: embeddings and heads stay dense
    version = 2                    # 2: masked Fisher gradients, padded blocks, scope encoder by default
    paper = "Kurtic et al. 2022, The Optimal BERT Surgeon (block-Fisher OBS pruning with weight update)"
    defaults = {**GradualMethod.defaults, **DEFAULTS}

    def check_options(self) -> None:
        super().check_options()
        check_options(self.options)

    def check_params(self, params) -> None:
        check_block_size(params, self.options["block_size"])

    def prune_step(self, state, sparsity: float) -> MaskSet:
        return prune_step(state.task, state.model, named_params(state.model, state.masks), state.masks, sparsity,
                          self.layerwise, self.options, state.cfg.batch_size, state.cfg.seed + state.step,
                          state.device, state.cfg.progress)
