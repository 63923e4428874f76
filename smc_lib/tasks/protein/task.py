"""The "protein" task: thermostability classification of protein sequences (SMC-Bench section 3.3).

Datasets HP-S²C2, HP-S²C5, HP-S and Meltome (`data.py` says what is held and what stands in); models ESM-1b /
ESM-2 through fair-esm and TAPE's BERT (`models.py`). The paper prunes only the attention Q/K/V/O and FFN
matrices of the transformer layers: the default scope is `encoder`. Metric: test accuracy in percent.
"""
from __future__ import annotations

import random
from functools import cached_property
from pathlib import Path
from typing import Iterable

import torch

from ...errors import SMCError
from ...train import TrainConfig
from .. import register_task
from ..base import ClassificationTask
from . import models
from .data import CLASSES, DATASETS, Protein, crop, data_folder, load_split

SPLITS = {"train": "train", "dev": "test", "test": "test"}   # no dev split is held: evaluation is the test split


@register_task("protein")
class ProteinTask(ClassificationTask):
    """Params: max_length (residues; longer sequences are cropped: a random window in training, the first
    residues in evaluation), layers / embed_dim / heads (the `esm2-tiny` model), dropout, eval_batch_size,
    max_train / max_eval (a fixed subset: the first N of a split, which the files hold in a fixed order)."""

    name = "protein"
    datasets = DATASETS
    default_scope = "encoder"
    primary_metric = "accuracy"
    model_versions = {"tape:": 2}   # 2: a local TAPE folder loads without BERT's unused pooler

    def __init__(self, dataset: str, model: str = "esm2-tiny", data_dir: Path | str = "data", fold: int | None = None,
                 seed: int = 0, max_length: int = models.ESM_LIMIT, layers: int = 4, embed_dim: int = 128,
                 heads: int = 4, dropout: float = 0.0, eval_batch_size: int = 16, max_train: int | None = None,
                 max_eval: int | None = None, **params):
        if params:
            raise SMCError(f"unknown protein params {sorted(params)}; see `help(ProteinTask)`")
        super().__init__(dataset, model, data_dir, fold, seed)
        if models.family(model) == "if1":            # if1.py: the model, tested on synthetic backbones
            raise SMCError(f"ESM-IF1 ({model!r}) reads backbone structures, and none are held for {dataset!r} (the "
                           "data hold sequences only); it runs in tests/test_if1.py, not on this task")
        if not 1 <= max_length <= models.ESM_LIMIT and models.family(model) == "esm":
            raise SMCError(f"max_length must be in [1, {models.ESM_LIMIT}] for ESM models, got {max_length}")
        self.max_length, self.dropout, self.eval_batch_size = int(max_length), float(dropout), int(eval_batch_size)
        self.arch = {"layers": layers, "embed_dim": embed_dim, "heads": heads}
        self.limits = {"train": max_train, "test": max_eval}
        self.tokenizer = models.Tokenizer(models.family(model))
        self.provenance: dict = {}

    # -- data
    def examples(self, split: str) -> list[Protein]:
        if split not in SPLITS:
            raise SMCError(f"unknown split {split!r}; protein datasets have train and test (dev = test)")
        rows = load_split(self.data_dir, self.dataset, SPLITS[split])
        limit = self.limits[SPLITS[split]]
        return rows[:limit] if limit else rows

    def data_files(self) -> list[Path]:
        folder = self.data_dir / "protein" / data_folder(self.dataset)
        return sorted(p for p in folder.rglob("*") if p.is_file())

    @cached_property
    def classes(self) -> tuple[str, ...]:
        return CLASSES[self.dataset]

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterable[dict]:
        rows = list(self.examples(split))
        rng = random.Random(seed) if shuffle else None
        if rng is not None:
            rng.shuffle(rows)
        for i in range(0, len(rows), batch_size):
            part = rows[i: i + batch_size]
            seqs = [crop(p.sequence, self.max_length, rng) for p in part]
            yield {"ids": self.tokenizer(seqs), "labels": torch.tensor([p.label for p in part])}

    def num_batches(self, split: str, batch_size: int) -> int:
        return -(-len(self.examples(split)) // batch_size)

    def eval_size(self, split: str) -> int:
        return len(self.examples(split))

    # -- model
    def build_model(self) -> torch.nn.Module:
        torch.manual_seed(self.seed)
        model, self.provenance = models.build(self.model_name, len(self.classes), dropout=self.dropout, **self.arch)
        return model

    def record_info(self) -> dict:
        return {"model": self.provenance, "max_length": self.max_length}

    def logits(self, model, batch: dict) -> torch.Tensor:
        return model(batch["ids"])

    def evaluate(self, model, split: str = "test") -> dict[str, float]:
        correct = self.correct(model, split, self.eval_batch_size)
        return {"accuracy": 100.0 * sum(correct) / max(1, len(correct))}

    def default_train_config(self) -> TrainConfig:
        """Table 5: ESM (AdamW, weight decay 1e-2, backbone LR 1e-6, head 2e-2, OneCycle, 4 epochs); TAPE LR 1e-4
        with 100 warm-up steps and linear decay. A randomly initialised `esm2-tiny` trains at one LR."""
        if self.model_name == "esm2-tiny":
            return TrainConfig(epochs=4, batch_size=8, optimizer="adamw", lr=1e-3, weight_decay=1e-2,
                               schedule="onecycle", eval_split="test")
        if models.family(self.model_name) == "tape":
            return TrainConfig(epochs=4, batch_size=16, optimizer="adamw", lr=1e-4, weight_decay=1e-2,
                               schedule="linear", warmup_steps=100, eval_split="test")
        return TrainConfig(epochs=4, batch_size=3, optimizer="adamw", lr=2e-2, weight_decay=1e-2, schedule="onecycle",
                           param_groups=[{"pattern": r"^backbone\.", "lr": 1e-6}], eval_split="test")


# Table 1 of the paper: OMP-after at 5 % on subsets of each layer's modules (scope `custom` with these
# include patterns; ESM names: self_attn.{q,k,v,out}_proj, fc1 / fc2).
_MODULE = {"Q": r"self_attn\.q_proj", "K": r"self_attn\.k_proj", "V": r"self_attn\.v_proj", "O": r"self_attn\.out_proj",
           "FFN": r"fc[12]"}
MODULE_SUBSETS = ("Q,K,V,O,FFN", "Q,K,V", "Q,K", "Q,V", "K,V")


def module_patterns(subset: str) -> list[str]:
    """Include regexes of a module subset such as "Q,K,V" (every transformer layer)."""
    parts = [p.strip() for p in subset.split(",")]
    if unknown := [p for p in parts if p not in _MODULE]:
        raise SMCError(f"unknown module {unknown[0]!r} in {subset!r}; choose from {', '.join(_MODULE)}")
    return [rf"(?:^|\.)layers\.\d+\.{_MODULE[p]}\.weight$" for p in parts]
