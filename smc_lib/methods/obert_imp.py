"""oBERT inside IMP rounds (Liu, Chen et al. 2023, Appendix C.2, after Kurtic et al. 2022): each round fine-tunes
with learning-rate rewinding (the full schedule again, weights kept; Renda et al. 2020) and, when the profile
sets `train.distill`, distillation from the dense fine-tuned model, then prunes 20 % of the remaining weights
by the oBERT saliency w² / (2 [F⁻¹]ᵢᵢ) of a block Fisher of masked gradients and moves the survivors by the
OBS update δw = -F⁻¹ P (Pᵀ F⁻¹ P)⁻¹ Pᵀ w. Round k is the run at 1 - 0.8^k, chained like LTH. Scope `encoder`."""
from __future__ import annotations

import torch

from ..masks import MaskSet
from ..scope import prunable
from . import register_method, scores
from .lth import LTH


@register_method("obert_imp")
class OBERTIMP(LTH):
    timing = "iterative"
    paper = "Liu, Chen et al. 2023 App. C.2; Kurtic et al. 2022: oBERT pruning in IMP rounds with LR rewinding and KD"
    defaults = {"rate": 0.2, "rewind": None, "block_size": 50, "damping": 1e-7, "grads": 128,
                "grad_batch_size": None, "fisher_dtype": "float32"}
    default_scope = "encoder"

    def check_params(self, params) -> None:
        scores.check_block_size(params, self.options["block_size"])

    def round_masks(self, task, trained, masks: MaskSet | None, target: float, cfg, ctx) -> MaskSet:
        o = self.options
        params = prunable(trained, self.scope, **ctx.scope_kwargs)
        device = next(trained.parameters()).device
        fishers = scores.block_fishers(task, trained, params, int(o["grads"]), o["grad_batch_size"] or cfg.batch_size,
                                       o["block_size"], seed=cfg.seed + len(self.rounds), device=device,
                                       dtype=getattr(torch, o["fisher_dtype"]), progress=cfg.progress,
                                       masks=masks.masks if masks is not None else None)
        finv = {n: f.inverse(o["damping"]) for n, f in fishers.items()}
        new = MaskSet.from_scores({n: scores.obert_scores(p, finv[n]) for n, p in params.items()}, target,
                                  self.layerwise, keep=masks)
        with torch.no_grad():
            for n, p in params.items():
                p.add_(scores.obs_update(p, finv[n], ~new.masks[n]).to(p.dtype))
        return new
