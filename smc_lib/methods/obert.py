"""oBERT, the Optimal BERT Surgeon (Kurtic et al. 2022, "The Optimal BERT Surgeon: Scalable and Accurate
Second-Order Pruning for Large Language Models", EMNLP): gradual pruning on the cubic schedule (as GMP) where
each pruning step recomputes the damped empirical block-Fisher F_b = λI + (1/m) Σ g_b g_bᵀ from m fresh
gradients (blocks of B consecutive weights, default B = 50, λ = 1e-7), ranks weights globally by the OBS
saliency w² / (2 [F⁻¹]ᵢᵢ), and moves the surviving weights of each block by the OBS update
δw = -F⁻¹ P (Pᵀ F⁻¹ P)⁻¹ Pᵀ w that compensates the pruned set P (the official SMC-Bench run has block size 1
and no update). The Fisher's gradients are masked (a pruned weight has none), a parameter the blocks do not
tile is zero-padded, and the default scope is `encoder`. Memory: d·B floats for the Fisher inverses of d
weights in scope."""
from __future__ import annotations

import torch

from ..errors import SMCError
from ..masks import MaskSet
from . import register_method, scores
from .base import named_params
from .gmp import GradualMethod


@register_method("obert")
class OBERT(GradualMethod):
    default_scope = "encoder"      # Appendix C / Kurtic et al.: embeddings and heads stay dense
    version = 2                    # 2: masked Fisher gradients, padded blocks, scope encoder by default
    paper = "Kurtic et al. 2022, The Optimal BERT Surgeon (block-Fisher OBS pruning with weight update)"
    defaults = {**GradualMethod.defaults, "block_size": 50, "damping": 1e-7, "grads": 128, "grad_batch_size": None,
                "fisher_dtype": "float32"}

    def check_options(self) -> None:
        super().check_options()
        o = self.options
        if not isinstance(o["block_size"], int) or o["block_size"] < 1:
            raise SMCError(f"obert block_size must be a positive integer, got {o['block_size']!r}")
        if not o["damping"] > 0:
            raise SMCError(f"obert damping must be > 0, got {o['damping']}; the paper uses 1e-7")
        if int(o["grads"]) < 1:
            raise SMCError(f"obert grads (m, gradients per Fisher) must be >= 1, got {o['grads']}")
        if o["fisher_dtype"] not in ("float32", "float64"):
            raise SMCError(f"obert fisher_dtype must be float32 or float64 (exact when grads < block_size), "
                           f"got {o['fisher_dtype']!r}")

    def check_params(self, params) -> None:
        scores.check_block_size(params, self.options["block_size"])

    def prune_step(self, state, sparsity: float) -> MaskSet:
        o = self.options
        params = named_params(state.model, state.masks)
        bs = o["grad_batch_size"] or state.cfg.batch_size
        fishers = scores.block_fishers(state.task, state.model, params, int(o["grads"]), bs, o["block_size"],
                                       seed=state.cfg.seed + state.step, device=state.device,
                                       dtype=getattr(torch, o["fisher_dtype"]), progress=state.cfg.progress,
                                       masks=state.masks.masks)
        finv = {n: f.inverse(o["damping"]) for n, f in fishers.items()}
        saliency = {n: scores.obert_scores(p, finv[n]) for n, p in params.items()}
        new = MaskSet.from_scores(saliency, sparsity, self.layerwise, keep=state.masks)
        with torch.no_grad():
            for n, p in params.items():
                p.add_(scores.obs_update(p, finv[n], ~new.masks[n]).to(p.dtype))
        return new
