"""Optimizers, learning-rate schedules and the distillation loss used by `train.fit`.

Schedules follow the fine-tuning recipes of the SMC-Bench tasks (Liu, Chen et al., ICLR 2023): linear warm-up
and decay (BERT/RoBERTa), OneCycle (the GTS solver), cosine and constant. The distillation loss is Hinton et
al. (2015), as used by oBERT (Kurtic et al., 2022).
"""
from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SMCError, unknown

SCHEDULES = ("constant", "linear", "onecycle", "cosine")
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def lr_multiplier(schedule: str, step: int, total: int, warmup: float = 0) -> float:
    """Learning-rate factor at `step` of `total`: linear warm-up then constant / linear decay to 0 /
    cosine to 0; `onecycle` follows torch's OneCycleLR (cosine up from lr/25 over the warm-up, default 30 %,
    then cosine down to lr/25e4)."""
    w = int(round(warmup * total)) if 0 < warmup < 1 else int(warmup)
    if schedule == "onecycle":
        up = max(1, w or int(0.3 * total))
        lo, end = 1 / 25, 1 / 25e4
        if step < up:
            return lo + (1 - lo) * (1 - math.cos(math.pi * step / up)) / 2
        p = min(1.0, (step - up) / max(1, total - up))
        return 1 + (end - 1) * (1 - math.cos(math.pi * p)) / 2
    if step < w:
        return (step + 1) / (w + 1)
    p = min(1.0, (step - w) / max(1, total - w))
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - p
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * p))
    raise unknown("schedule", schedule, list(SCHEDULES))


class Schedule:
    """Callable for LambdaLR; `offset`/`length` let `restart_schedule` rewind it (saved in its state_dict)."""

    def __init__(self, schedule: str, total: int, warmup: float):
        self.schedule, self.warmup, self.offset, self.length = schedule, warmup, 0, total

    def __call__(self, step: int) -> float:
        return lr_multiplier(self.schedule, step - self.offset, self.length, self.warmup)


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    """Adam/AdamW with per-group settings: each parameter joins the first group whose regex matches."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups: list[dict] = [{**{k: v for k, v in g.items() if k != "pattern"}, "params": [], "pattern": g["pattern"]}
                          for g in cfg.param_groups]
    default: list = []
    for n, p in named:
        g = next((g for g in groups if re.search(g["pattern"], n)), None)
        (g["params"] if g else default).append(p)
    for g in groups:
        if not g["params"]:
            raise SMCError(f"param_groups pattern {g['pattern']!r} matches no trainable parameter; fix the regex")
        del g["pattern"]
    groups = ([{"params": default}] if default else []) + groups
    return OPTIMIZERS[cfg.optimizer](groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                     weight_decay=cfg.weight_decay, fused=_fusable([p for _, p in named]))


def _fusable(params: list[torch.Tensor]) -> bool | None:
    """torch's fused Adam(W) kernel (one pass over each tensor) where it applies: floating parameters all on
    one CPU or CUDA device. Same update as the per-tensor loop to float rounding, and on CPU several times
    faster than torch's per-tensor default for a model of many tensors such as GTS."""
    devices = {p.device for p in params}
    ok = len(devices) == 1 and next(iter(devices)).type in ("cpu", "cuda") and \
        all(p.is_floating_point() for p in params)
    return True if ok else None


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher/T) || softmax(student/T)), averaged over all positions of the last dim."""
    s = student.reshape(-1, student.shape[-1]).float() / temperature
    t = teacher.reshape(-1, teacher.shape[-1]).float() / temperature
    kl = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean")
    return kl * temperature ** 2
