"""`dense`: fine-tuning without pruning, the reference every sparse model of SMC-Bench is compared with
(Liu, Chen et al. 2023, "Sparsity May Cry: Let Us Fail (Current) Sparse Neural Networks Together!")."""
from __future__ import annotations

from . import register_method
from .base import DenseMethod


@register_method("dense")
class Dense(DenseMethod):
    paper = "Liu, Chen et al. 2023 (SMC-Bench): dense fine-tuning baseline"
