"""The "arithmetic" task: GTS / Graph2Tree on MAWPS, ASDiv-A and SVAMP (SMC-Bench section 3.2).

Answer accuracy follows Patel et al. 2021's code (compute_prefix_tree_result): a prediction is correct
when its value over the problem's numbers equals the gold equation's value within 1e-4. `Answer` agrees
with the gold equation on all but 15 distinct problems of the three datasets (rounded answers and a few
upstream label errors, see tests/test_arithmetic_data.py); `metric_target="answer"` compares with it.
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
from ..base import Task
from .batch import collate
from .data import DATASETS, OutputVocab, Problem, answer_correct, evaluate_prefix, load_split
from ..hub import provenance
from .embed import RANDOM, build_embedder, build_featurizer, input_words, resolve_embedder
from .graph2tree import Graph2Tree
from .gts import GTS, ModelConfig

MODELS = {"gts": GTS, "graph2tree": Graph2Tree}
HIDDEN = {"gts": 512, "graph2tree": 384}  # Table 4
LR = {"gts": (1e-3, 8e-6), "graph2tree": (8e-4, 1e-5)}  # (model, embedder), Table 4


@register_task("arithmetic")
class ArithmeticTask(Task):
    """Math word problems. Params: embedder ('minilm', a hub name / local path, or 'random'), hidden,
    layers, dropout, embedding_dim (random embedder only), beam_size, max_len, max_train / max_eval (a
    fixed subset, for the CPU profile), eval_batch_size, number_word, metric_target ('equation' | 'answer')."""

    name = "arithmetic"
    datasets = DATASETS
    default_scope = "all"
    primary_metric = "accuracy"

    def __init__(self, dataset: str, model: str = "gts", data_dir: Path | str = "data", fold: int | None = None,
                 seed: int = 0, embedder: str = "minilm", hidden: int | None = None, layers: int = 2,
                 dropout: float = 0.5, embedding_dim: int = 768, beam_size: int = 5, max_len: int = 30,
                 max_train: int | None = None, max_eval: int | None = None, eval_batch_size: int = 32,
                 number_word: str = "NUM", metric_target: str = "equation", **params):
        model = model.lower()
        if model not in MODELS:
            raise SMCError(f"unknown arithmetic model {model!r}; choose one of: {', '.join(MODELS)}")
        if params:
            raise SMCError(f"unknown arithmetic params {sorted(params)}; see `help(ArithmeticTask)`")
        if metric_target not in ("equation", "answer"):
            raise SMCError(f"metric_target must be 'equation' or 'answer', got {metric_target!r}")
        super().__init__(dataset, model, data_dir, fold=None if dataset == "svamp" else (fold or 0), seed=seed)
        self.embedder_name = embedder
        self.model_cfg = ModelConfig(hidden or HIDDEN[model], layers, dropout, beam_size, max_len)
        self.embedding_dim, self.eval_batch_size = embedding_dim, eval_batch_size
        self.number_word, self.metric_target = number_word, metric_target
        self.limits = {"train": max_train, "dev": max_eval}

    # -- data
    def problems(self, split: str) -> list[Problem]:
        return self._problems[split]

    @cached_property
    def _problems(self) -> dict[str, list[Problem]]:
        out = {}
        for split in ("train", "dev"):
            rows = load_split(self.data_dir, self.dataset, split, self.fold)
            limit = self.limits[split]
            out[split] = rows[:limit] if limit else rows  # the files are already shuffled by their authors
        return out

    @cached_property
    def vocab(self) -> OutputVocab:
        train, dev = self.problems("train"), self.problems("dev")
        return OutputVocab.build(train, max_numbers=max(len(p.numbers) for p in dev))

    @cached_property
    def featurizer(self):
        sentences = [input_words(p.words, self.number_word) for p in self.problems("train")]
        return build_featurizer(self.embedder_name, sentences)

    def _collate(self, rows: list[Problem], targets: bool) -> dict:
        return collate(rows, self.featurizer, self.vocab, self.number_word, targets=targets,
                       graphs=MODELS[self.model_name].uses_graphs)

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterable[dict]:
        rows = list(self.problems(split))
        if shuffle:
            random.Random(seed).shuffle(rows)
        for i in range(0, len(rows), batch_size):
            yield self._collate(rows[i: i + batch_size], targets=split == "train")

    def num_batches(self, split: str, batch_size: int) -> int:
        return -(-len(self.problems(split)) // batch_size)

    # -- model
    def build_model(self) -> torch.nn.Module:
        """A fresh model: pretrained embedder weights (or a new random embedding) and a new GTS / Graph2Tree."""
        torch.manual_seed(self.seed)
        embedder = build_embedder(self.embedder_name, self.featurizer, self.embedding_dim)
        if self.embedder_name != RANDOM:
            self.loaded = provenance(resolve_embedder(self.embedder_name), getattr(embedder, "model", None))
        return MODELS[self.model_name](embedder, self.vocab, self.model_cfg)

    def loss(self, model, batch: dict) -> torch.Tensor:
        return model(batch)

    # -- metric
    def predict(self, model, split: str = "dev") -> list[list[str]]:
        """Beam-search prefix expressions for every problem of `split`, in file order."""
        from ...train import to_device

        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        out: list[list[str]] = []
        with torch.no_grad():
            for batch in self.batches(split, self.eval_batch_size):
                out.extend(model.decode(to_device(batch, device)))
        model.train(was_training)
        return out

    def evaluate(self, model, split: str = "dev") -> dict[str, float]:
        rows = self.problems(split)
        correct = [answer_correct(pred, p.numbers, self.target_value(p))
                   for pred, p in zip(self.predict(model, split), rows)]
        return {"accuracy": 100.0 * sum(correct) / max(1, len(correct))}

    def eval_size(self, split: str) -> int:
        return len(self.problems(split))

    def record_info(self) -> dict:
        return {"embedder": getattr(self, "loaded", None) or {"init": self.embedder_name}}

    def target_value(self, p: Problem) -> float:
        return p.answer if self.metric_target == "answer" else evaluate_prefix(p.equation, p.numbers)

    def default_train_config(self) -> TrainConfig:
        """Table 4 of the paper (Adam, 50 epochs, weight decay 1e-5; the embedder gets its own LR).
        The reference code halves the LR every 20 epochs; we use a cosine decay over the run instead.
        A random word embedding (no pretrained weights) trains at the model's LR, as in the original GTS."""
        lr, emb_lr = LR[self.model_name]
        groups = [] if self.embedder_name == RANDOM else [{"pattern": r"^embedder\.", "lr": emb_lr}]
        return TrainConfig(epochs=50, batch_size=8 if self.dataset == "svamp" else 4, optimizer="adam", lr=lr,
                           weight_decay=1e-5, param_groups=groups, schedule="cosine")
