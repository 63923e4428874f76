"""The Task interface: data, model, loss and metric of one SMC-Bench task family (Liu, Chen et al., ICLR 2023).

A task knows nothing about sparsity: `train.fit` and the methods drive it through these few calls, so every
method is applied the same way to every task. Register a subclass with `@register_task("name")`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from ..errors import SMCError
from ..train import TrainConfig


class Task:
    """One task family. Subclasses set the class attributes and implement the data/model/metric methods.

    Batches are dicts of tensors (moved to the device by `train.to_device`). `evaluate` returns metrics in
    percent, higher is better for `primary_metric`.
    """

    name: str = ""
    datasets: tuple[str, ...] = ()
    default_scope: str = "all"
    primary_metric: str = "accuracy"
    encoder_patterns: tuple[str, ...] | None = None   # overrides scope.ENCODER_PATTERNS for `encoder`
    version: int = 1                  # part of every run key: bump it when the task's behaviour changes
    # A change that touches only some models: {model-name prefix: version}, in the key of those models' runs
    # alone, so the other records stay valid.
    model_versions: dict[str, int] = {}

    def __init__(self, dataset: str, model: str, data_dir: Path | str = "data", fold: int | None = None,
                 seed: int = 0, **params):
        if self.datasets and dataset not in self.datasets:
            raise SMCError(f"task {self.name!r} has no dataset {dataset!r}; choose one of: {', '.join(self.datasets)}")
        self.dataset, self.model_name, self.data_dir = dataset, model, Path(data_dir)
        self.fold, self.seed, self.params = fold, seed, params

    # -- data
    def batches(self, split: str, batch_size: int, shuffle: bool, seed: int) -> Iterable[dict]:
        """One epoch of `split` as dict batches; the order is a pure function of `seed` when shuffled."""
        raise NotImplementedError

    def num_batches(self, split: str, batch_size: int) -> int:
        """Batches per epoch of `split` (used to turn `epochs` into steps); override when cheaper to compute."""
        return sum(1 for _ in self.batches(split, batch_size, shuffle=False, seed=0))

    def data_files(self) -> list[Path]:
        """The files this task's runs read (their content is fingerprinted into the run key): by default
        every file under `<data_dir>/<task>/<dataset>/`."""
        folder = self.data_dir / self.name / self.dataset
        return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []

    def eval_size(self, split: str) -> int | None:
        """Examples behind `evaluate(model, split)` (a record's tolerance is one example's worth)."""
        return None

    def record_info(self) -> dict:
        """What a run record should say beyond its metrics (e.g. BLEU signatures, the checkpoint loaded)."""
        return {}

    # -- model
    def build_model(self) -> nn.Module:
        """The (pretrained) model, from a hub name or a local path."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        """Scalar training loss of `batch`."""
        raise NotImplementedError

    def logits(self, model: nn.Module, batch: dict) -> torch.Tensor:
        """Output logits (last dim = classes / vocabulary): needed for knowledge distillation only."""
        raise SMCError(f"task {self.name!r} defines no logits(); knowledge distillation is not available for it")

    def loss_and_logits(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and logits of one batch; override to share one forward pass (used by distillation)."""
        return self.loss(model, batch), self.logits(model, batch)

    # -- metric
    def evaluate(self, model: nn.Module, split: str = "dev") -> dict[str, float]:
        """Metrics on `split`, in percent; must contain `primary_metric`."""
        raise NotImplementedError

    def default_train_config(self) -> TrainConfig:
        return TrainConfig()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dataset={self.dataset!r}, model={self.model_name!r})"


class ClassificationTask(Task):
    """A task whose batches carry `labels` and whose `logits` score the classes: cross-entropy loss and the
    per-example correctness behind an accuracy."""

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        return self.loss_and_logits(model, batch)[0]

    def loss_and_logits(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits(model, batch)
        return torch.nn.functional.cross_entropy(logits, batch["labels"]), logits

    @torch.no_grad()
    def correct(self, model: nn.Module, split: str, batch_size: int) -> list[bool]:
        """Whether each example of `split`, in order, is classified right (the model in eval mode)."""
        from ..train import to_device

        was_training, device = model.training, next(model.parameters()).device
        model.eval()
        out: list[bool] = []
        for batch in self.batches(split, batch_size, shuffle=False, seed=0):
            batch = to_device(batch, device)
            out += (self.logits(model, batch).argmax(-1) == batch["labels"]).tolist()
        model.train(was_training)
        return out
