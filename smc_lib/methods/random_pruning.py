"""Random pruning: keep a seeded uniformly random subset of the weights, globally (so each layer is pruned
to the target in expectation) — the baseline of Liu et al. 2022, "The Unreasonable Effectiveness of Random
Pruning". `random_before` prunes the pretrained model; `random_after` the dense fine-tuned one, then
retrains it with the full schedule. The scores depend on the seed and the shapes only, so at one seed both
keep the very same weights (the layerwise page's Jaccard of 1): the two differ only in when the mask is
applied, which is the comparison the paper's before/after split is about."""
from __future__ import annotations

from . import register_method
from . import scores
from .base import AfterMethod, BeforeMethod


@register_method("random_before")
class RandomBefore(BeforeMethod):
    score = staticmethod(scores.random_score)
    paper = "Liu et al. 2022, The Unreasonable Effectiveness of Random Pruning (ICLR)"


@register_method("random_after")
class RandomAfter(AfterMethod):
    score = staticmethod(scores.random_score)
    paper = "Liu et al. 2022, The Unreasonable Effectiveness of Random Pruning (ICLR)"
