"""The one training loop of SMC-Bench: every task and every method fine-tunes through `fit`.

Optimizer and schedule come from a plain `TrainConfig`; methods act through hooks (RigL reads dense
gradients in `after_backward`, GMP/RigL change the mask in `on_step_end`); after every optimizer step the
MaskSet re-zeros the pruned weights, so a pruned weight is exactly 0.0 at every forward pass. Evaluations
every `eval_every` steps give a learning curve (`history`); the reported metrics are the last step's. With
`select_best` the best evaluation's weights are returned instead, but only while every hook says the mask
is final (the official SMC-Bench GMP could report a model evaluated before reaching its target sparsity);
select on a held-out split then, never on the test split most SMC-Bench datasets evaluate on.

Learning-rate rewinding (Renda et al., ICLR 2020): call `fit` again on the pruned model (a fresh optimizer
and the full schedule from step 0, weights kept), or, inside a fit, have a hook call
`state.restart_schedule()` to restart the schedule from the current step (oBERT's gradual pruning with LR
rewinding, Kurtic et al. 2022). Knowledge distillation (Hinton et al. 2015, as used by oBERT): pass a
`teacher` and `cfg.distill = {"weight": w, "temperature": T}`; the loss is
(1 - w) * task loss + w * T^2 * KL(softmax(teacher/T) || softmax(student/T)). `weight` is the distillation
loss's share, as SparseML's `hardness` (which oBERT's recipes set): a profile that writes `hardness` is
refused, since this code once used the opposite convention and the same number would switch KD off.
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .errors import SMCError, unknown
from .masks import MaskSet
from .optim import OPTIMIZERS, SCHEDULES, Schedule, build_optimizer, distill_loss, lr_multiplier  # noqa: F401



@dataclass
class TrainConfig:
    """Plain training settings; `steps` wins over `epochs`; `warmup_steps` < 1 is a fraction of the steps."""

    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 16
    optimizer: str = "adamw"
    lr: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    param_groups: Sequence[dict] = ()   # [{"pattern": regex on param name, "lr": ..., "weight_decay": ...}]
    schedule: str = "linear"
    warmup_steps: float = 0
    grad_clip: float | None = None
    eval_every: int | None = None
    eval_split: str = "dev"
    select_best: bool = False           # True: return the best evaluation's weights. Off by default: the
                                        # evaluation split is the test split for most SMC-Bench datasets
    seed: int = 0
    device: str = "auto"
    distill: dict | None = None         # {"weight": 1.0, "temperature": 2.0}: weight = the KD loss's share
    progress: bool = True


@dataclass
class FitResult:
    model: nn.Module
    metrics: dict[str, float]
    history: list[dict]
    steps: int
    best_step: int | None = None


@dataclass
class FitState:
    """What hooks see. `step` = optimizer steps completed so far (in `on_step_end`: including this one)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    masks: MaskSet | None
    step: int
    total_steps: int
    cfg: TrainConfig
    task: Any
    device: torch.device
    batch: dict | None = None
    loss: torch.Tensor | None = None
    resumed: bool = False
    metrics: dict = field(default_factory=dict)

    def restart_schedule(self, length: int | None = None) -> None:
        """Learning-rate rewinding inside a fit: run the schedule again from now over `length` steps
        (default: the remaining steps)."""
        sched = self.scheduler.lr_lambdas[0]
        for fn in self.scheduler.lr_lambdas:
            fn.offset, fn.length = self.step, length or max(1, self.total_steps - self.step)
        for g, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            g["lr"] = base * sched(self.scheduler.last_epoch)


# ----------------------------------------------------------------------------------------------- plumbing
def resolve_device(device: str = "auto") -> torch.device:
    """`auto` → cuda if available, else cpu; an unavailable cuda is an error, not a silent fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SMCError(f"bad device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SMCError(f"device {device!r} requested but CUDA is not available; use device='cpu' or 'auto'")
    return dev


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor inside nested dicts / lists / tuples to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _training_loss(task, model: nn.Module, batch: dict, teacher: nn.Module | None, distill: dict | None):
    if teacher is None or distill["weight"] <= 0.0:
        return task.loss(model, batch)
    loss, logits = task.loss_and_logits(model, batch)
    with torch.no_grad():
        t_logits = task.logits(teacher, batch)
    w, temp = distill["weight"], distill["temperature"]
    return (1 - w) * loss + w * distill_loss(logits, t_logits, temp)


_TYPES = {"steps": int, "epochs": (int, float), "batch_size": int, "optimizer": str, "lr": (int, float),
          "eps": (int, float), "weight_decay": (int, float), "schedule": str, "warmup_steps": (int, float),
          "grad_clip": (int, float), "eval_every": int, "eval_split": str, "select_best": bool, "seed": int,
          "device": str, "distill": dict, "progress": bool}


def check_types(cfg: TrainConfig) -> None:
    """Each setting of the expected type (a YAML `steps: abc` is a string): one line naming key and value."""
    for name, kind in _TYPES.items():
        value = getattr(cfg, name)
        bad_bool = isinstance(value, bool) and kind not in (bool,) and bool not in (kind if isinstance(kind, tuple)
                                                                                  else (kind,))
        if value is not None and (not isinstance(value, kind) or bad_bool):
            want = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise SMCError(f"train setting {name}: {value!r} is not a {want}")


def check_config(cfg: TrainConfig, teacher: nn.Module | None = None, before_run: bool = False) -> None:
    """Reject a bad config with one clear line, before any work starts (`before_run`: no teacher exists yet,
    so only the settings are checked)."""
    check_types(cfg)
    if cfg.optimizer not in OPTIMIZERS:
        raise unknown("optimizer", cfg.optimizer, list(OPTIMIZERS))
    if cfg.schedule not in SCHEDULES:
        raise unknown("schedule", cfg.schedule, list(SCHEDULES))
    if cfg.steps is None and cfg.epochs is None:
        raise SMCError("TrainConfig needs `steps` or `epochs`; e.g. steps=1000")
    if (cfg.steps is not None and cfg.steps < 1) or (cfg.steps is None and cfg.epochs <= 0):
        raise SMCError(f"need a positive number of steps/epochs, got steps={cfg.steps} epochs={cfg.epochs}")
    for name in ("batch_size", "lr", "eval_every"):
        if (value := getattr(cfg, name)) is not None and value <= 0:
            raise SMCError(f"train setting {name}: {value!r} must be positive")
    if cfg.distill is not None:
        check_distill(cfg.distill)
    if not before_run and (teacher is None) != (cfg.distill is None):
        raise SMCError("knowledge distillation needs both a teacher model and cfg.distill="
                       "{'weight': w, 'temperature': T}; give both or neither")


def check_distill(distill: dict) -> None:
    if "hardness" in distill:
        raise SMCError(f"distill {distill}: write `weight` (the distillation loss's share, what SparseML "
                       "calls hardness), not `hardness`; this code's old `hardness` weighted the task loss, "
                       "so the same number meant the opposite")
    if set(distill) != {"weight", "temperature"} or not 0 <= distill["weight"] <= 1 or distill["temperature"] <= 0:
        raise SMCError(f"bad distill {distill}; want {{'weight': 0..1, 'temperature': > 0}}")


# ---------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, payload: dict) -> None:
    """Atomic write: a crash leaves either the old or the new checkpoint, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _rng_state() -> dict:
    """Every RNG's state as tensors and plain Python values, so a checkpoint loads with weights_only=True."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    random.setstate(s["python"])
    n = s["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if s["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def load_checkpoint(path: Path) -> dict:
    """A resume checkpoint, loaded with weights_only=True: tensors and plain values only, so a planted or
    corrupt file can never run code; either is an SMCError naming the file and how to clear it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling errors come in many types; all mean "not ours"
        raise SMCError(f"{path} is not a resume checkpoint this code wrote ({type(e).__name__}); delete it "
                       f"(rm {path}) and rerun: the run restarts from step 0") from None


def _hooks_call(hooks: Sequence, name: str, state: FitState) -> list:
    return [getattr(h, name)(state) for h in hooks if hasattr(h, name)]


def _train_stream(task, cfg: TrainConfig, epoch: int, skip: int):
    """Endless (epoch, position, batch) stream; epoch e is shuffled with seed cfg.seed * 100003 + e."""
    while True:
        seen = 0
        for pos, batch in enumerate(task.batches("train", cfg.batch_size, shuffle=True,
                                                 seed=cfg.seed * 100003 + epoch)):
            seen += 1
            if pos >= skip:
                yield epoch, pos, batch
        if seen == 0:
            raise SMCError(f"task {task.name!r} yields no training batches; check its data")
        epoch, skip = epoch + 1, 0


# ---------------------------------------------------------------------------------------------- fit
def fit(task, model: nn.Module, cfg: TrainConfig, masks: MaskSet | None = None, hooks: Sequence = (),
        teacher: nn.Module | None = None, checkpoint: Path | str | None = None) -> FitResult:
    """Train `model` on `task` under `cfg`, keeping `masks` enforced; resume from `checkpoint` if it exists.

    Hooks: plain objects with any of on_fit_start / after_backward / on_step_end / mask_is_final /
    on_fit_end (each takes a FitState); hooks with `state_dict`/`load_state_dict` are checkpointed too.
    Returns the best-evaluated weights (among evaluations where the mask is final) if `cfg.select_best`,
    else the last ones; `metrics` are those of the returned weights on `cfg.eval_split`.
    """
    check_config(cfg, teacher)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    model.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    total = cfg.steps or max(1, math.ceil(cfg.epochs * task.num_batches("train", cfg.batch_size)))
    optimizer = build_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, [Schedule(cfg.schedule, total, cfg.warmup_steps) for _ in optimizer.param_groups])
    if masks is not None:
        masks.to(device).attach(model, optimizer)
        masks.apply(model)
    state = FitState(model, optimizer, scheduler, masks, 0, total, cfg, task, device)
    history: list[dict] = []
    best: dict | None = None
    epoch = pos = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        c = load_checkpoint(ckpt)
        model.load_state_dict(c["model"])
        optimizer.load_state_dict(c["optimizer"])
        scheduler.load_state_dict(c["scheduler"])
        if masks is not None:
            masks.load_state_dict(c["masks"])
        for h, hs in zip([h for h in hooks if hasattr(h, "load_state_dict")], c["hooks"]):
            h.load_state_dict(hs)
        state.step, epoch, pos, history, best = c["step"], c["epoch"], c["pos"], c["history"], c["best"]
        state.resumed = True
        _set_rng_state(c["rng"])
    _hooks_call(hooks, "on_fit_start", state)
    if masks is not None:
        masks.apply(model)
    re_enforce = masks is not None and any(hasattr(h, "on_step_end") for h in hooks)

    def evaluate_and_save() -> None:
        nonlocal best
        with torch.no_grad():
            metrics = task.evaluate(model, cfg.eval_split)
        if task.primary_metric not in metrics:
            raise SMCError(f"task {task.name!r} evaluate() lacks its primary metric {task.primary_metric!r}")
        final = all(_hooks_call(hooks, "mask_is_final", state))
        state.metrics = metrics
        rec = {"step": state.step, **metrics, "mask_final": final,
               "train_loss": state.loss.item() if state.loss is not None else float("nan")}
        if masks is not None:
            rec["sparsity"] = masks.sparsity()
        history.append(rec)
        if cfg.select_best and final and (best is None or metrics[task.primary_metric] > best["metrics"][
                task.primary_metric]):
            best = {"step": state.step, "metrics": metrics,
                    "weights": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        if ckpt is not None:
            save_checkpoint(ckpt, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "masks": masks.state_dict() if masks is not None else None,
                "hooks": [h.state_dict() for h in hooks if hasattr(h, "state_dict")],
                "step": state.step, "epoch": epoch, "pos": pos, "history": history, "best": best,
                "rng": _rng_state()})

    stream = _train_stream(task, cfg, epoch, pos)
    bar = tqdm(total=total, initial=state.step, disable=not cfg.progress, desc=f"fit {task.name}", leave=False)
    model.train()
    while state.step < total:
        epoch, p, batch = next(stream)
        pos = p + 1
        state.batch = to_device(batch, device)
        loss = _training_loss(task, model, state.batch, teacher, cfg.distill)
        if state.step % 10 == 0 and not torch.isfinite(loss):     # checked every 10 steps: a GPU sync
            raise SMCError(f"training loss became {loss.item()} at step {state.step}; lower the learning rate")
        loss.backward()
        state.loss = loss.detach()
        _hooks_call(hooks, "after_backward", state)
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if masks is not None:
            masks.enforce()
        state.step += 1
        _hooks_call(hooks, "on_step_end", state)
        if re_enforce:
            masks.enforce()
        bar.update(1)
        if cfg.progress and state.step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if cfg.eval_every and state.step % cfg.eval_every == 0 and state.step < total:
            evaluate_and_save()
            model.train()
    bar.close()
    if not history or history[-1]["step"] != total:
        evaluate_and_save()
    _hooks_call(hooks, "on_fit_end", state)
    metrics = history[-1]
    if best is not None:
        model.load_state_dict(best["weights"])
        metrics = best["metrics"]
    metrics = {k: v for k, v in metrics.items() if k not in ("step", "mask_final", "train_loss", "sparsity")}
    return FitResult(model, metrics, history, state.step, best["step"] if best is not None else None)
