"""One-shot magnitude pruning (OMP): keep the largest |w|, globally (Han et al. 2015, "Learning both weights
and connections for efficient neural networks"; for pretrained transformers Chen et al. 2020, "The Lottery
Ticket Hypothesis for Pre-trained BERT Networks"). `omp_before` prunes the pretrained weights and fine-tunes
sparse; `omp_after` prunes the dense fine-tuned model and retrains it with the full schedule."""
from __future__ import annotations

from . import register_method
from . import scores
from .base import AfterMethod, BeforeMethod


@register_method("omp_before")
class OMPBefore(BeforeMethod):
    score = staticmethod(scores.omp_score)
    paper = "Han et al. 2015; Chen et al. 2020 (magnitude pruning of the pretrained weights)"


@register_method("omp_after")
class OMPAfter(AfterMethod):
    score = staticmethod(scores.omp_score)
    paper = "Han et al. 2015 (magnitude pruning after fine-tuning, then retraining)"
