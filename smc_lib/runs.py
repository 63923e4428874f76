"""Runs: one `(task, dataset, model, method, sparsity, seed, fold, profile)` plus its settings → `RunResult`.

A full SMC-Bench sweep is hundreds of fine-tunings (4 tasks × 10 datasets × 11 methods × 10 sparsities
in the paper), so a finished run must never be recomputed and a killed one must resume. The result is
JSON under a content hash of the resolved config (`<store>/<key>.json`, written atomically); a rerun
returns it without training. Everything else a run writes lives in `<store>/<key>/`: the resume
checkpoint `train.fit` keeps, method state (IMP rounds), and for the dense run the fine-tuned weights
(`model.pt`) that every `after` method and LTH rewinding load through `MethodContext.dense_model`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .errors import SMCError, check_sparsity
from .runtime import torch_threads

DEFAULT_STORE = Path("outputs/runs")
_NOT_HASHED = ("device",)  # where a run executes does not change what it is


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's result; its content hash is the run's identity."""
    task: str
    dataset: str
    model: str
    method: str
    sparsity: float
    seed: int = 0
    fold: int | None = None
    profile: str = "custom"
    scope: str | None = None            # None → the task's default_scope
    scope_patterns: dict = field(default_factory=dict)  # {"include": [regex], "exclude": [regex]} (scope.prunable)
    layerwise: bool = False
    train: dict = field(default_factory=dict)           # TrainConfig overrides
    task_params: dict = field(default_factory=dict)     # Task(**task_params)
    method_options: dict = field(default_factory=dict)  # Method(**method_options)
    device: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sparsity", round(check_sparsity(self.sparsity), 6))
        if self.method == "dense" and self.sparsity != 0.0:
            raise SMCError(f"the dense run has sparsity 0, got {self.sparsity}; drop --sparsity for dense")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """A 16-hex content hash of the canonical JSON of the config (device left out)."""
        d = {k: v for k, v in self.as_dict().items() if k not in _NOT_HASHED}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def dense(self) -> "RunConfig":
        """The dense fine-tuning run this run's `after`/LTH method starts from (same data, model, seed, fold)."""
        return dataclasses.replace(self, method="dense", sparsity=0.0, method_options={}, layerwise=False)

    def label(self) -> str:
        fold = "" if self.fold is None else f"/fold{self.fold}"
        return f"{self.task}/{self.dataset}{fold}/{self.model}/{self.method}@{self.sparsity:g}/seed{self.seed}"


@dataclass
class RunResult:
    """What a run produced. `metrics` are in percent (higher is better) as the task's `evaluate` reports."""
    key: str
    config: dict
    metrics: dict[str, float]
    primary_metric: str
    achieved_sparsity: float
    layerwise: list[dict]
    wall_s: float
    steps: int
    train_config: dict
    versions: dict
    git_revision: str | None
    device: str
    finished_at: str
    cached: bool = field(default=False, compare=False)

    @property
    def run_config(self) -> RunConfig:
        return RunConfig(**self.config)

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d.pop("cached")
        return json.dumps(d, indent=1, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> "RunResult":
        return cls(**json.loads(text), cached=True)


# --------------------------------------------------------------------------- the store
def result_path(cfg: RunConfig, store: Path | str = DEFAULT_STORE) -> Path:
    """`<store>/<task>/<key>.json`: a folder per task, so each section's DVC stage owns its runs."""
    return Path(store) / cfg.task / f"{cfg.key()}.json"


def run_dir(cfg: RunConfig, store: Path | str = DEFAULT_STORE) -> Path:
    """Checkpoints and method state of one run (created on demand)."""
    return Path(store) / cfg.task / cfg.key()


def load_result(cfg: RunConfig, store: Path | str = DEFAULT_STORE) -> RunResult | None:
    path = result_path(cfg, store)
    if not path.exists():
        return None
    try:
        return RunResult.from_json(path.read_text())
    except (json.JSONDecodeError, TypeError) as e:
        raise SMCError(f"{path} is not a run result ({e}); delete it to rerun that run") from None


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file beside `path`, then rename: a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock so two workers on one host never train the same run at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- executing one run
def execute(cfg: RunConfig, store: Path | str = DEFAULT_STORE, data_dir: Path | str = "data") -> RunResult:
    """The stored result of `cfg`, training it first if it is not in the store yet."""
    store = Path(store)
    if (done := load_result(cfg, store)) is not None:
        return done
    with _locked(store / cfg.task / f".{cfg.key()}.lock"):
        if (done := load_result(cfg, store)) is not None:  # another worker finished it meanwhile
            return done
        result = _train(cfg, store, Path(data_dir))
        atomic_write(result_path(cfg, store), result.to_json())
        _drop_checkpoints(run_dir(cfg, store))
    return result


def _drop_checkpoints(folder: Path, keep: tuple[str, ...] = ("model.pt",)) -> None:
    """A finished run needs no resume state; only the dense weights (`model.pt`) are reused."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path.name not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _train(cfg: RunConfig, store: Path, data_dir: Path) -> RunResult:
    """Train one run (the only place that does; tests count calls to it)."""
    import torch

    from .methods import get_method
    from .methods.base import MethodContext
    from .tasks import get_task

    task_cls = get_task(cfg.task)
    task = task_cls(cfg.dataset, cfg.model, data_dir, fold=cfg.fold, seed=cfg.seed, **cfg.task_params)
    overrides = {k: tuple(v) if k == "betas" else v for k, v in cfg.train.items()}  # YAML lists → tuples
    train_cfg = dataclasses.replace(task.default_train_config(), **overrides, seed=cfg.seed, device=cfg.device)
    scope = cfg.scope or task.default_scope
    method = get_method(cfg.method)(cfg.sparsity, scope=scope, layerwise=cfg.layerwise, **cfg.method_options)
    ckpt_dir = run_dir(cfg, store)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ctx = MethodContext(dense_model=lambda: dense_model(cfg, store, data_dir, task),
                        checkpoint_dir=ckpt_dir, scope_kwargs={**_scope_kwargs(task), **cfg.scope_patterns})

    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    fit, masks = method.run(task, task.build_model(), train_cfg, ctx)
    wall = time.perf_counter() - start
    if cfg.method == "dense":
        save_model(fit.model, ckpt_dir / "model.pt")
    return RunResult(
        key=cfg.key(), config=cfg.as_dict(), metrics={k: float(v) for k, v in fit.metrics.items()},
        primary_metric=task.primary_metric, achieved_sparsity=float(masks.sparsity()),
        layerwise=masks.layerwise().to_dict("records"), wall_s=round(wall, 3), steps=int(fit.steps),
        train_config=_jsonable(dataclasses.asdict(train_cfg)), versions=versions(),
        git_revision=git_revision(), device=str(_model_device(fit.model)),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _scope_kwargs(task) -> dict:
    patterns = getattr(task, "encoder_patterns", None)
    return {"encoder_patterns": patterns} if patterns else {}


def dense_model(cfg: RunConfig, store: Path | str, data_dir: Path | str, task=None):
    """A fresh copy of the dense fine-tuned model of `cfg`'s dataset/model/seed/fold, training it once if needed."""
    import torch

    dense = cfg.dense()
    execute(dense, store, data_dir)
    if task is None:
        from .tasks import get_task
        task = get_task(cfg.task)(cfg.dataset, cfg.model, Path(data_dir), fold=cfg.fold, seed=cfg.seed,
                                  **cfg.task_params)
    model = task.build_model()
    path = run_dir(dense, store) / "model.pt"
    if not path.exists():
        raise SMCError(f"{path} missing though its run result exists; delete {result_path(dense, store)} to retrain")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model


def save_model(model, path: Path) -> None:
    import io

    import torch

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    atomic_write(path, buf.getvalue())


def _model_device(model) -> str:
    try:
        return str(next(model.parameters()).device)
    except (StopIteration, AttributeError):
        return "cpu"


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


# --------------------------------------------------------------------------- provenance
def versions() -> dict[str, str]:
    """Library versions that shape a result (recorded, not hashed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("smc-bench", "torch", "transformers", "numpy", "fair-esm"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def git_revision() -> str | None:
    """`<sha>` of the checkout (`+dirty` when it has uncommitted changes); None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (sha + ("+dirty" if dirty else "")) or None


# --------------------------------------------------------------------------- the public entry points
def run(task: str, dataset: str, method: str, sparsity: float = 0.0, model: str | None = None,
        seed: int = 0, fold: int | None = None, profile: str | None = None, store: Path | str | None = None,
        data_dir: Path | str | None = None, device: str | None = None) -> RunResult:
    """One run with the settings of `profile`'s section for `task` (`from smc_lib import run`)."""
    return _run(task, dataset, method, sparsity, model, seed, fold, profile, store, data_dir, device)[2]


def _run(task, dataset, method, sparsity, model, seed, fold, profile, store, data_dir,
         device) -> tuple[RunConfig, Path, RunResult]:
    """Resolve the profile's settings, then execute under its `threads`: (config, store, result)."""
    from .config import load_profile
    from .sweep import make_config

    prof = load_profile(profile)
    cfg = make_config(prof, task, dataset=dataset, method=method, sparsity=sparsity, model=model, seed=seed,
                      fold=fold, device=device)
    store = Path(store or prof["store"])
    with torch_threads(prof.get("threads")):
        return cfg, store, execute(cfg, store, Path(data_dir or prof["data_dir"]))


def cli_run(task: str, dataset: str, method: str, sparsity: float, model: str | None = None, seed: int = 0,
            fold: int | None = None, profile: str | None = None, store: str | None = None,
            data_dir: str | None = None, device: str | None = None) -> str:
    """`smc run ...`: run (or fetch) one run and return a one-line summary for the terminal."""
    cfg, store_dir, res = _run(task, dataset, method, sparsity, model, seed, fold, profile, store, data_dir, device)
    metrics = ", ".join(f"{k}={v:.2f}" for k, v in res.metrics.items())
    how = "cached" if res.cached else f"trained in {res.wall_s:.1f}s"
    return (f"{cfg.label()}  {metrics}  achieved_sparsity={res.achieved_sparsity:.4f}  "
            f"({how}; {result_path(cfg, store_dir)})")
