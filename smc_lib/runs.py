"""Runs: one `(task, dataset, model, method, sparsity, seed, fold, profile)` plus its settings → `RunResult`.

A full SMC-Bench sweep is hundreds of fine-tunings (4 tasks × 10 datasets × 11 methods × 10 sparsities
in the paper), so a finished run must never be recomputed and a killed one must resume. A run leaves two
kinds of output (`Store`):

- its *record* (`<records>/<task>/<key>.json`, small JSON written atomically: config, metrics, per-layer
  sparsity, timings, versions, revision; never weights). The default profile's records are committed under
  `results/<profile>/`, so the report renders from them on a fresh clone; a rerun returns the record
  without training.
- its *artifacts* (`<artifacts>/<task>/<key>/`: the resume checkpoint `train.fit` keeps, and for the runs
  others start from — the dense run, each IMP round — the trained weights `model.pt` and mask `masks.pt`).
  They are never in git; when one is missing but its record exists it is recomputed (training is
  deterministic for a given seed and thread count) and checked against the record.

The key is a content hash of everything that changes a result (`resolve`): the config, the task's and
method's *resolved* defaults and the training config they give, a fingerprint of the data files the task
reads, and the integer `version` of the task and method classes (bumped when their behaviour changes), so
no cached number outlives the code that made it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import inspect
import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .errors import SMCError, check_sparsity
from .runtime import fast_paths

DEFAULT_STORE = Path("outputs/runs")
_NOT_HASHED = ("device", "data_dir")  # where a run executes does not change what it is (the data's content does)
_RESOLVED = ("scope", "train", "task_params", "method_options")   # hashed as `resolve` resolves them


@dataclass(frozen=True)
class Store:
    """Where records (small JSON, publishable) and artifacts (weights, checkpoints; never in git) go."""
    records: Path
    artifacts: Path

    @classmethod
    def of(cls, store: "Store | Path | str | None", records: Path | str | None = None) -> "Store":
        """A Store from a Store, or from one folder (records beside the artifacts unless `records` is given)."""
        if isinstance(store, Store):
            return store
        root = Path(store) if store is not None else DEFAULT_STORE
        return cls(records=Path(records) if records is not None else root, artifacts=root)


StoreLike = Store | Path | str


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
    data_dir: str = "data"                              # fingerprinted by content, not by path

    def __post_init__(self) -> None:
        object.__setattr__(self, "sparsity", round(check_sparsity(self.sparsity), 6))
        if self.method == "dense" and self.sparsity != 0.0:
            raise SMCError(f"the dense run has sparsity 0, got {self.sparsity}; drop --sparsity for dense")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """What the key hashes: the config (device and data path left out) with its settings resolved
        (`resolve`): a default spelled out in a profile is the same run as the default left implicit."""
        d = {k: v for k, v in self.as_dict().items() if k not in _NOT_HASHED + _RESOLVED}
        return {**d, "resolved": resolve(self)}

    def key(self) -> str:
        """A 16-hex content hash of the canonical JSON of `identity()` (memoized per config and code version)."""
        from .methods import get_method
        from .tasks import get_task

        m = get_method(self.method)
        task = get_task(self.task)
        code = (task.version, json.dumps(task.model_versions, sort_keys=True), m.version, get_method("dense").version,
                json.dumps(m.defaults, sort_keys=True, default=str), fast_paths())
        return _key(json.dumps(self.as_dict(), sort_keys=True, default=str), code)

    def dense(self) -> "RunConfig":
        """The dense fine-tuning run this run's `after`/LTH method (or distillation teacher) starts from: same
        data, model, seed, fold and training, no distillation, the task's scope (a dense run prunes nothing,
        so every scope variant of a method shares one)."""
        train = {k: v for k, v in self.train.items() if k != "distill"}
        return dataclasses.replace(self, method="dense", sparsity=0.0, method_options={}, layerwise=False,
                                   scope=None, scope_patterns={}, train=train)

    def at(self, sparsity: float) -> "RunConfig":
        """The same run at another sparsity (an IMP chain's earlier round)."""
        return dataclasses.replace(self, sparsity=sparsity)

    def label(self) -> str:
        fold = "" if self.fold is None else f"/fold{self.fold}"
        return f"{self.task}/{self.dataset}{fold}/{self.model}/{self.method}@{self.sparsity:g}/seed{self.seed}"


@functools.lru_cache(maxsize=4096)
def _key(config_json: str, code: tuple) -> str:
    cfg = RunConfig(**json.loads(config_json))
    return hashlib.sha256(json.dumps(cfg.identity(), sort_keys=True, default=str).encode()).hexdigest()[:16]


_CTOR_ARGS = {"self", "dataset", "model", "data_dir", "fold", "seed", "params"}


def resolve(cfg: RunConfig) -> dict[str, Any]:
    """Everything behind the config that changes a result, resolved: the task's constructor defaults merged
    with `task_params`, the training config the task's defaults and `train` give, the scope, the method's
    option defaults merged with `method_options`, the task's and method's `version` (and the dense method's
    for the methods that start from the dense run; the task's `model_versions` entry for its model, if any),
    and the fingerprint of the task's data files."""
    from .methods import get_method
    from .tasks import get_task

    task_cls, method_cls = get_task(cfg.task), get_method(cfg.method)
    sig = inspect.signature(task_cls.__init__)
    task_params = {n: p.default for n, p in sig.parameters.items()
                   if n not in _CTOR_ARGS and p.default is not inspect.Parameter.empty}
    task_params.update(cfg.task_params)
    task = make_task(cfg)
    train = {**dataclasses.asdict(train_config(cfg, task)), "progress": None, "device": None}
    scope = cfg.scope or method_cls.default_scope or task.default_scope
    out = {"task": {"version": task_cls.version, "params": task_params, "scope": scope},
           "train": _jsonable(train),
           "method": {"version": method_cls.version, "options": {**method_cls.defaults, **cfg.method_options}},
           "data": data_fingerprint(task.data_files())}
    if method_cls.timing in ("after", "iterative") or (cfg.train.get("distill") and method_cls.timing != "dense"):
        out["method"]["dense_version"] = get_method("dense").version
    for prefix, version in task_cls.model_versions.items():   # absent unless the model is one it names
        if cfg.model.startswith(prefix):
            out["task"]["model_version"] = version
    if not fast_paths():                  # the plain paths round differently: another run (absent when on)
        out["fast_paths"] = False
    return out


def validate(cfg: RunConfig) -> None:
    """Everything about a run that can be checked without training: task params (by building the task), the
    training settings' types and ranges, the method's options and scope. One SMCError, before any run starts."""
    from .methods import get_method
    from .train import check_config

    task = make_task(cfg)
    check_config(train_config(cfg, task), before_run=True)
    method_cls = get_method(cfg.method)
    method_cls(cfg.sparsity, scope=cfg.scope or method_cls.default_scope or task.default_scope,
               layerwise=cfg.layerwise, **cfg.method_options)


def check_writable(folder: Path | str, what: str) -> None:
    """`folder` is (made) a directory this process can write a file into, or an SMCError naming it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as e:
        raise SMCError(f"{what} {folder} is not a writable folder ({e.strerror or type(e).__name__}); "
                       "choose another path") from None


def make_task(cfg: RunConfig):
    """The task object of a run."""
    from .tasks import get_task

    return get_task(cfg.task)(cfg.dataset, cfg.model, data_path(cfg), fold=cfg.fold, seed=cfg.seed,
                              **cfg.task_params)


def train_config(cfg: RunConfig, task):
    """The task's default TrainConfig with the run's overrides, seed and device."""
    overrides = {k: tuple(v) if k == "betas" else v for k, v in cfg.train.items()}  # YAML lists → tuples
    return dataclasses.replace(task.default_train_config(), **overrides, seed=cfg.seed, device=cfg.device)


def data_path(cfg: RunConfig) -> Path:
    """The run's data folder: absolute as given, else relative to the working directory or the checkout."""
    p = Path(cfg.data_dir)
    if p.is_absolute() or p.exists():
        return p
    return Path(__file__).resolve().parent.parent / p


_FILE_HASHES: dict[tuple, str] = {}


def data_fingerprint(files: list[Path]) -> str:
    """sha256 over the (name, content hash) of each file a task reads; file hashes are memoized by
    (path, size, mtime) within the process."""
    h = hashlib.sha256()
    for f in sorted(Path(x) for x in files):
        st = f.stat()
        memo = (str(f.resolve()), st.st_size, st.st_mtime_ns)
        if memo not in _FILE_HASHES:
            _FILE_HASHES[memo] = hashlib.sha256(f.read_bytes()).hexdigest()
        h.update(f"{f.name}\0{_FILE_HASHES[memo]}\n".encode())
    return h.hexdigest()[:16]


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
    achieved_sparsity_all: float | None = None          # pruned / every parameter of the model (incl. out of scope)
    params: dict = field(default_factory=dict)          # {"scope": weights in scope, "all": every parameter}
    resolved: dict = field(default_factory=dict)        # what the key hashed besides the config (`resolve`)
    eval_examples: int | None = None                    # examples behind `metrics` (one is 100 / n points)
    threads: int | None = None                          # torch threads it ran with
    info: dict = field(default_factory=dict)            # the task's own provenance (`Task.record_info`)
    analysis: dict = field(default_factory=dict)        # numbers analysis pages need (`smc_lib.analysis`)
    cpu_s: float | None = None                          # CPU seconds the process spent training (all threads)
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

    @property
    def tolerance(self) -> float:
        """How far a recomputation's primary metric may differ: one evaluation example's worth."""
        return 100.0 / self.eval_examples if self.eval_examples else 1e-6


# --------------------------------------------------------------------------- the store
def result_path(cfg: RunConfig, store: StoreLike = DEFAULT_STORE) -> Path:
    """`<records>/<task>/<key>.json`: a folder per task, so each section's DVC stage owns its records."""
    return Store.of(store).records / cfg.task / f"{cfg.key()}.json"


def run_dir(cfg: RunConfig, store: StoreLike = DEFAULT_STORE) -> Path:
    """Artifacts of one run: checkpoints, method state, weights others start from (created on demand)."""
    return Store.of(store).artifacts / cfg.task / cfg.key()


def load_result(cfg: RunConfig, store: StoreLike = DEFAULT_STORE) -> RunResult | None:
    path = result_path(cfg, store)
    if not path.exists():
        return None
    return read_record(path)


_RECORD_TYPES = {"key": str, "config": dict, "metrics": dict, "primary_metric": str, "achieved_sparsity": (int, float),
                 "layerwise": list, "wall_s": (int, float), "steps": int}


def read_record(path: Path) -> RunResult:
    """A record from disk, its fields type-checked: a hand-edited or damaged file is an SMCError naming it."""
    try:
        res = RunResult.from_json(Path(path).read_text())
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
        raise SMCError(f"{path} is not a run result ({e}); delete it to rerun that run") from None
    for name, kind in _RECORD_TYPES.items():
        value = getattr(res, name)
        if not isinstance(value, kind) or (name == "metrics" and not all(
                isinstance(v, (int, float)) for v in value.values())):
            raise SMCError(f"{path}: field {name} is {value!r}, not a {getattr(kind, '__name__', 'number')}; "
                           "delete the record to rerun that run")
    return res


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file beside `path`, then rename: a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


class RunBusy(Exception):
    """Another process on this host holds the run's lock: it is training it (`execute(..., wait=False)`)."""


@contextlib.contextmanager
def _locked(path: Path, wait: bool = True) -> Iterator[None]:
    """An exclusive lock so two workers on one host never train the same run at once; `wait=False` raises
    RunBusy instead of waiting for the other worker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(str(path)) from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- executing one run
def execute(cfg: RunConfig, store: StoreLike = DEFAULT_STORE, data_dir: Path | str | None = None,
            wait: bool = True) -> RunResult:
    """The stored record of `cfg`, training it first if it is not in the store yet. With `wait=False`, a run
    another process is training raises RunBusy instead of waiting for it."""
    store = Store.of(store)
    if data_dir is not None:
        cfg = dataclasses.replace(cfg, data_dir=str(data_dir))
    if (done := load_result(cfg, store)) is not None:
        return done
    lock = _lock_path(cfg, store)
    with _locked(lock, wait):
        if (done := load_result(cfg, store)) is not None:  # another worker finished it meanwhile
            return done
        try:
            result = _train(cfg, store, data_path(cfg))
        except BaseException:
            _remove_if_empty(run_dir(cfg, store))          # a failed run leaves no empty folder behind
            raise
        atomic_write(result_path(cfg, store), result.to_json())
        _drop_checkpoints(run_dir(cfg, store))
        lock.unlink(missing_ok=True)    # safe: a waiter re-reads the record, which exists now, before training
    return result


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _lock_path(cfg: RunConfig, store: Store) -> Path:
    return store.artifacts / cfg.task / f".{cfg.key()}.lock"


KEPT = ("model.pt", "masks.pt", "rewind.pt")   # artifacts other runs start from


def artifacts(cfg: RunConfig, store: StoreLike, data_dir: Path | str | None = None) -> Path:
    """The artifact folder of a finished run that keeps weights (dense, IMP rounds), recomputing them when
    the record exists but the weights are gone (artifacts are not kept between machines or sittings).
    A recomputation whose metric differs from the record's by more than `tolerance` is an error."""
    store = Store.of(store)
    if data_dir is not None:
        cfg = dataclasses.replace(cfg, data_dir=str(data_dir))
    record = execute(cfg, store)
    folder = run_dir(cfg, store)
    if (folder / "model.pt").exists():
        return folder
    with _locked(_lock_path(cfg, store)):
        if not (folder / "model.pt").exists():
            again = _train(cfg, store, data_path(cfg))
            _drop_checkpoints(folder)
            check_same(record, again, result_path(cfg, store))
    return folder


def recompute(cfg: RunConfig, store: StoreLike) -> RunResult:
    """Train `cfg` again (its dependencies come from `store`) without writing its record: `smc verify`.
    Resume state is dropped before and after: a checkpoint left by an earlier recomputation would otherwise be
    resumed at its last step, and the "recomputed" metric would be that run's, not a new training's."""
    store = Store.of(store)
    _drop_checkpoints(run_dir(cfg, store))
    try:
        return _train(cfg, store, data_path(cfg))
    finally:
        _drop_checkpoints(run_dir(cfg, store))


def check_same(published: RunResult, recomputed: RunResult, where: Path | str) -> None:
    """Raise SMCError naming the record when a recomputation disagrees with it beyond its tolerance."""
    m = published.primary_metric
    a, b = published.metrics.get(m), recomputed.metrics.get(m)
    if a is None or b is None or abs(a - b) > published.tolerance + 1e-9:
        raise SMCError(f"{where}: recomputed {m} {b} differs from the record's {a} by more than "
                       f"{published.tolerance:.4g}: the record was edited, the code or data changed without a "
                       f"version bump (bump the task's or method's `version`), or the run is not deterministic")


def _drop_checkpoints(folder: Path, keep: tuple[str, ...] = KEPT) -> None:
    """A finished run needs no resume state; only the weights others start from are kept."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path.name not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _train(cfg: RunConfig, store: Store, data_dir: Path) -> RunResult:
    """Train one run (the only place that does; tests count calls to it)."""
    import torch

    from .methods import get_method
    from .methods.base import MethodContext

    cfg = dataclasses.replace(cfg, data_dir=str(data_dir))
    task = make_task(cfg)
    train_cfg = train_config(cfg, task)
    method_cls = get_method(cfg.method)
    scope = cfg.scope or method_cls.default_scope or task.default_scope
    method = method_cls(cfg.sparsity, scope=scope, layerwise=cfg.layerwise, **cfg.method_options)
    ckpt_dir = run_dir(cfg, store)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ctx = MethodContext(dense_model=lambda: dense_model(cfg, store, data_dir, task),
                        checkpoint_dir=ckpt_dir, scope_kwargs={**_scope_kwargs(task), **cfg.scope_patterns},
                        previous=lambda s: previous_round(cfg.at(s), store, task))

    _prepare(cfg, store, method_cls, method)
    torch.manual_seed(cfg.seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    fit, masks = method.run(task, task.build_model(), train_cfg, ctx)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    n_all = sum(p.numel() for p in fit.model.parameters())
    analysis = _analysis(cfg, task, fit.model, masks)
    if method_cls.keeps_weights:
        save_model(fit.model, ckpt_dir / "model.pt")
        save_tensors(masks.state_dict(), ckpt_dir / "masks.pt")
        if getattr(method, "rewind_state", None) is not None:     # LTH with rewinding to step t > 0
            save_tensors(method.rewind_state, ckpt_dir / "rewind.pt")
    return RunResult(
        key=cfg.key(), config=_public_config(cfg), metrics={k: float(v) for k, v in fit.metrics.items()},
        primary_metric=task.primary_metric, achieved_sparsity=float(masks.sparsity()),
        layerwise=masks.layerwise().to_dict("records"), wall_s=round(wall, 3), steps=int(fit.steps),
        train_config=_jsonable(dataclasses.asdict(train_cfg)), versions=versions(),
        git_revision=git_revision(), device=str(_model_device(fit.model)),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        achieved_sparsity_all=masks.n_pruned() / n_all, params={"scope": masks.numel(), "all": n_all},
        resolved=resolve(cfg), eval_examples=task.eval_size(train_cfg.eval_split),
        threads=torch.get_num_threads(), info=_jsonable(task.record_info()), analysis=analysis,
        cpu_s=round(cpu, 3))


def _analysis(cfg: RunConfig, task, model, masks) -> dict:
    """A sample of a sparse run's mask; the lazy-regime numbers of a dense run (smc_lib.analysis)."""
    from .analysis import lazy_regime, mask_sample

    if cfg.method != "dense":
        return {"mask_sample": mask_sample(masks)}
    start = dict(task.build_model().named_parameters())          # the same weights the run started from
    tuned = dict(model.named_parameters())
    names = masks.names()
    return {"lazy_regime": lazy_regime({n: start[n].detach() for n in names},
                                       {n: tuned[n].detach().cpu() for n in names})}


def _prepare(cfg: RunConfig, store: Store, method_cls, method) -> None:
    """Compute the runs this one starts from (dense run, an IMP chain's previous round) before its clock
    starts, so a record's wall time is its own training only."""
    from .schedules import imp_rounds

    if method_cls.timing == "iterative" and cfg.sparsity > 0:
        rounds = imp_rounds(cfg.sparsity, method.options.get("rate", 0.2))
        if len(rounds) > 1:
            artifacts(cfg.at(rounds[-2]), store)
            return
    if method_cls.timing == "dense":
        return
    needs_dense = method_cls.timing == "after" or cfg.train.get("distill") or (
        method_cls.timing == "iterative" and not method.options.get("rewind"))    # rewind t > 0 trains its own
    if needs_dense:
        artifacts(cfg.dense(), store)


def _public_config(cfg: RunConfig) -> dict:
    """The config as a record stores it: the data folder relative to the checkout when inside it."""
    d = cfg.as_dict()
    root = Path(__file__).resolve().parent.parent
    with contextlib.suppress(ValueError):
        d["data_dir"] = str(Path(cfg.data_dir).resolve().relative_to(root))
    return d


def load_tensors(path: Path) -> dict:
    """An artifact written by `save_tensors`, loaded with weights_only=True; a damaged one is an SMCError
    naming it (delete it: it is recomputed from its record's config)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated zips, bad pickles, ...: one message
        raise SMCError(f"{path} is damaged ({type(e).__name__}); delete it (rm {path}) and rerun: it is "
                       "recomputed") from None


def previous_round(prev: RunConfig, store: Store, task):
    """(trained model, masks, rewind state or None) of an IMP chain's earlier round, computing it if needed."""
    from .masks import MaskSet

    folder = artifacts(prev, store)
    model = task.build_model()
    model.load_state_dict(load_tensors(folder / "model.pt"))
    masks = MaskSet(load_tensors(folder / "masks.pt"))
    rewind = folder / "rewind.pt"
    start = load_tensors(rewind) if rewind.exists() else None
    return model, masks, start


def _scope_kwargs(task) -> dict:
    patterns = getattr(task, "encoder_patterns", None)
    return {"encoder_patterns": patterns} if patterns else {}


def dense_model(cfg: RunConfig, store: StoreLike, data_dir: Path | str, task=None):
    """A fresh copy of the dense fine-tuned model of `cfg`'s dataset/model/seed/fold, training it once if needed."""
    dense = dataclasses.replace(cfg.dense(), data_dir=str(data_dir))
    folder = artifacts(dense, store)
    model = (task or make_task(dense)).build_model()
    model.load_state_dict(load_tensors(folder / "model.pt"))
    return model


def save_model(model, path: Path) -> None:
    save_tensors({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)


def save_tensors(tensors: dict, path: Path) -> None:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(tensors, buf)
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


NOT_CODE = ("results", "dvc.lock")   # what a checkout holds besides the code: published records, DVC's lock


def git_revision(root: Path | str | None = None) -> str | None:
    """`<sha>` of the checkout that holds this package (or `root`), `+dirty` when its code has uncommitted
    changes: any tracked file but the published records and DVC's lock (`NOT_CODE`), which a sweep adds to
    and `dvc repro` rewrites while the code stays what the commit says. None outside git."""
    root = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    code = [".", *(f":(exclude){p}" for p in NOT_CODE)]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *code], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (sha + ("+dirty" if dirty else "")) or None
