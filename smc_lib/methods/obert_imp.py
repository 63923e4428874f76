"""oBERT inside IMP rounds (Liu, Chen et al. 2023, Appendix C.2, after Kurtic et al. 2022): each round fine-tunes
with learning-rate rewinding (the full schedule again, weights kept; Renda et al. 2020) and, when the profile
sets `train.distill`, distillation from the dense fine-tuned model, then prunes 20 % of the remaining weights
by the oBERT saliency w² / (2 [F⁻¹]ᵢᵢ) of a block Fisher of masked gradients and moves the survivors by the
OBS update δw = -F⁻¹ P (Pᵀ F⁻¹ P)⁻¹ Pᵀ w (`obert.prune_step`). Round k is the run at 1 - 0.8^k, chained like
LTH. Scope `encoder`."""
from __future__ import annotations

from ..masks import MaskSet
from ..scope import prunable
from . import obert, register_method
from .lth import LTH


@register_method("obert_imp")
class OBERTIMP(LTH):
    timing = "iterative"
    paper = "Liu, Chen et al. 2023 App. C.2; Kurtic et al. 2022: oBERT pruning in IMP rounds with LR rewinding and KD"
    defaults = {"rate": 0.2, "rewind": None, **obert.DEFAULTS}
    default_scope = "encoder"

    def check_options(self) -> None:
        super().check_options()
        obert.check_options(self.options)

    def check_params(self, params) -> None:
        obert.check_block_size(params, self.options["block_size"])

    def round_masks(self, task, trained, masks: MaskSet | None, target: float, cfg, ctx) -> MaskSet:
        params = prunable(trained, self.scope, **ctx.scope_kwargs)
        return obert.prune_step(task, trained, params, masks, target, self.layerwise, self.options, cfg.batch_size,
                                cfg.seed + len(self.rounds), next(trained.parameters()).device, cfg.progress)
