"""`toy`: a tiny synthetic, seeded classification task for fast tests of methods and the training loop.

Each example is a sequence of token ids; its label is the argmax over classes of a fixed random
token→class relevance table summed over the sequence, so an embedding-bag MLP can learn it in a few dozen
steps. The data depend only on the dataset's fixed seed (not on the run seed), the initial weights only on
the task's `seed`. Nothing is read from disk.
"""
from __future__ import annotations

from functools import cached_property

import torch
import torch.nn.functional as F
from torch import nn

from smc_lib.errors import SMCError
from smc_lib.train import TrainConfig
from smc_lib.tasks import register_task
from smc_lib.tasks.base import Task

_DATA_SEED = 1234


class ToyNet(nn.Module):
    """Embedding bag → LayerNorm → fc1 → fc2 → head (names chosen to exercise every scope rule)."""

    def __init__(self, vocab: int, classes: int, dim: int = 16, hidden: int = 32, dropout: float = 0.1):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.embed(input_ids).mean(dim=1))
        h = self.drop(F.relu(self.fc1(h)))
        return self.head(self.drop(F.relu(self.fc2(h))))


@register_task("toy")
class ToyTask(Task):
    """Synthetic bag-of-tokens classification (params: vocab, classes, length, n_train, n_dev, n_test,
    dim, hidden, dropout)."""

    name = "toy"
    datasets = ("toy",)
    default_scope = "all"
    primary_metric = "accuracy"
    encoder_patterns = (r"^fc[12]\.weight$",)      # the toy net's "transformer layer" is its MLP

    def __init__(self, dataset: str = "toy", model: str = "toy", data_dir="data", fold=None, seed: int = 0,
                 **params):
        super().__init__(dataset, model, data_dir, fold, seed, **params)
        p = {"vocab": 32, "classes": 4, "length": 8, "n_train": 2048, "n_dev": 256, "n_test": 256,
             "dim": 16, "hidden": 32, "dropout": 0.1}
        unknown = set(params) - set(p)
        if unknown:
            raise SMCError(f"toy task: unknown params {sorted(unknown)}; known: {sorted(p)}")
        p.update(params)
        self.cfg = p

    @cached_property
    def _data(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        c = self.cfg
        g = torch.Generator().manual_seed(_DATA_SEED)
        relevance = torch.randn(c["vocab"], c["classes"], generator=g)
        out = {}
        for split in ("train", "dev", "test"):
            ids = torch.randint(c["vocab"], (c[f"n_{split}"], c["length"]), generator=g)
            out[split] = (ids, relevance[ids].sum(dim=1).argmax(dim=1))
        return out

    def eval_size(self, split: str) -> int:
        return len(self._split(split)[1])

    def _split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self._data:
            raise SMCError(f"toy task has no split {split!r}; choose train, dev or test")
        return self._data[split]

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0):
        ids, labels = self._split(split)
        order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed)) if shuffle \
            else torch.arange(len(ids))
        for i in range(0, len(ids), batch_size):
            sel = order[i:i + batch_size]
            yield {"input_ids": ids[sel], "labels": labels[sel]}

    def num_batches(self, split: str, batch_size: int) -> int:
        return -(-len(self._split(split)[0]) // batch_size)

    def build_model(self) -> nn.Module:
        c = self.cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return ToyNet(c["vocab"], c["classes"], c["dim"], c["hidden"], c["dropout"])

    def logits(self, model: nn.Module, batch: dict) -> torch.Tensor:
        return model(batch["input_ids"])

    def loss_and_logits(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits(model, batch)
        return F.cross_entropy(logits, batch["labels"]), logits

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        return self.loss_and_logits(model, batch)[0]

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str = "dev") -> dict[str, float]:
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        correct = total = 0
        loss = 0.0
        for b in self.batches(split, 256):
            logits = model(b["input_ids"].to(device))
            labels = b["labels"].to(device)
            loss += float(F.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(-1) == labels).sum())
            total += len(labels)
        model.train(was_training)
        return {"accuracy": 100.0 * correct / total, "loss": loss / total}

    def default_train_config(self) -> TrainConfig:
        return TrainConfig(steps=60, batch_size=32, lr=5e-2, schedule="linear", warmup_steps=0.1,
                           eval_every=20, progress=False)
