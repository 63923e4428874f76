"""SNIP (Lee et al. 2019, "SNIP: Single-shot Network Pruning based on Connection Sensitivity", ICLR): before
fine-tuning, keep the weights with the largest connection sensitivity |ḡ ⊙ w|, ḡ the loss gradient of the
pretrained model averaged over `snip_batches` training batches; global threshold."""
from __future__ import annotations

from ..errors import SMCError
from . import register_method
from . import scores
from .base import BeforeMethod


@register_method("snip")
class SNIP(BeforeMethod):
    score = staticmethod(scores.snip_score)
    paper = "Lee et al. 2019, SNIP: Single-shot Network Pruning based on Connection Sensitivity (ICLR)"
    defaults = {"snip_batches": 1}

    def check_options(self) -> None:
        if int(self.options["snip_batches"]) < 1:
            raise SMCError(f"snip_batches must be >= 1, got {self.options['snip_batches']}")
