"""Sweeps: a profile section → a grid of runs → an executor → the tidy results table.

The grid is methods × sparsities × datasets × models × seeds × folds, with the dense run once per
dataset/model/seed/fold (it is the 0 % point of every curve and the start of every `after` method).
Executors: `local` runs in this process with a progress bar; `ray` submits each run as a Ray task
(`num_gpus_per_run` from the profile's `ray:` block) to the cluster at `address`, or to a local one.
Both read and write the same run store, so a sweep is resumable and gives one table either way.

`from smc_lib import sweep` gives this module: `sweep.sweep(section, ...)` runs a grid.
"""
from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pandas as pd
from tqdm import tqdm  # plain text bars: no ipywidgets needed in JupyterLab or papermill

from . import results as _results
from .config import ANALYSES, load_profile, section
from .errors import SMCError, unknown
from .runs import (DEFAULT_STORE, RunBusy, RunConfig, RunResult, Store, atomic_write, check_writable, execute,
                   result_path, validate)
from .runtime import torch_threads

GRID_KEYS = ("datasets", "models", "methods", "sparsities", "seeds", "folds")


def make_config(profile: dict, task: str, dataset: str, method: str, sparsity: float = 0.0,
                model: str | None = None, seed: int = 0, fold: int | None = None,
                device: str | None = None) -> RunConfig:
    """One fully resolved RunConfig from a profile section (global defaults and per_dataset merged)."""
    if model is None:
        model = (section(profile, task).get("models") or [None])[0]
        if model is None:
            raise SMCError(f"section {task!r} of {profile.get('path')} lists no models; pass --model")
    sec = section(profile, task, dataset, model)
    return RunConfig(
        task=task, dataset=dataset, model=model, method=method,
        sparsity=0.0 if method == "dense" else sparsity, seed=seed, fold=fold, profile=profile["profile"],
        scope=sec.get("scope"), scope_patterns=dict(sec.get("scope_patterns") or {}),
        layerwise=bool(sec.get("layerwise", False)) and method != "dense",
        train=dict(sec.get("train") or {}), task_params=dict(sec.get("task") or {}),
        method_options={} if method == "dense" else dict((sec.get("method_options") or {}).get(method) or {}),
        device=device or profile.get("device", "auto"), data_dir=str(profile.get("data_dir") or "data"))


def grid(profile: dict | str | None, task: str, **overrides: Any) -> list[RunConfig]:
    """Every run of `profile`'s `task` section; `overrides` (datasets=, methods=, sparsities=, ...) win.

    Dense runs come first, once per dataset/model/seed/fold (for `seeds` and `dense_seeds`); then
    method × sparsity on `seeds`.
    """
    prof = profile if isinstance(profile, dict) else load_profile(profile)
    if unknown := set(overrides) - set(GRID_KEYS) - {"device"}:
        raise SMCError(f"unknown sweep option(s) {sorted(unknown)}; use {', '.join(GRID_KEYS)} or device")
    device = overrides.pop("device", None)
    base = section(prof, task)
    datasets = overrides.get("datasets") or base.get("datasets") or []
    dense, sparse = [], []
    given = {k: v for k, v in overrides.items() if v is not None}
    for ds, model in itertools.product(datasets, given.get("models") or base.get("models") or []):
        sec = {**section(prof, task, ds, model), **given}
        methods = [m for m in sec.get("methods", []) if m != "dense"]
        seeds = sec.get("seeds") or [0]
        dense_seeds = list(dict.fromkeys([*seeds, *(sec.get("dense_seeds") or [])]))
        for seed, fold in itertools.product(dense_seeds, sec.get("folds") or [None]):
            one = dict(profile=prof, task=task, dataset=ds, model=model, seed=seed, fold=fold, device=device)
            dense.append(make_config(method="dense", **one))
            if seed in seeds:
                sparse += [make_config(method=m, sparsity=s, **one)
                           for m, s in itertools.product(methods, sec.get("sparsities") or [])]
    if not dense:
        raise SMCError(f"the {task!r} sweep is empty; list datasets and models in its profile section")
    return _unique(dense + sparse)


ROADMAP = {"LTH": ("lth", False), "+ LR rewinding": ("lth_norewind", False),
           "+ distillation": ("lth_norewind", True), "oBERT (+ LRR + KD)": ("obert_imp", True)}


def roadmap(profile: dict | str | None) -> tuple[list[RunConfig], dict[str, str], Store]:
    """Figure 9's runs (Appendix C.2): each step of ROADMAP (method, with distillation from the dense model or
    not) at the sparsities of the commonsense section's `notebook.roadmap` ({dataset, sparsities, distill}),
    all at scope `encoder` so that they share a denominator. Returns the configs, each config key's step
    name, and their store (records under `<records>/obert_roadmap`). No roadmap in the profile: no configs."""
    import dataclasses

    prof = profile if isinstance(profile, dict) else load_profile(profile)
    base = profile_store(prof)
    store = Store(records=base.records / "obert_roadmap", artifacts=base.artifacts)
    if "commonsense" not in prof:
        return [], {}, store
    sec = section(prof, "commonsense")
    opts = (sec.get("notebook") or {}).get("roadmap")
    configs, label = [], {}
    if not opts or not sec.get("implemented", True):
        return configs, label, store
    for name, (method, kd) in ROADMAP.items():
        for s in opts["sparsities"]:
            c = make_config(prof, "commonsense", dataset=opts["dataset"], method=method, sparsity=s)
            c = dataclasses.replace(c, scope="encoder", train={**c.train, **({"distill": opts["distill"]} if kd else {})})
            configs.append(c)
            label[c.key()] = name
    return configs, label, store


def esm_modules(profile: dict | str | None) -> tuple[list[RunConfig], Store]:
    """Table 1's runs (§3.3): OMP-after at the protein section's `notebook.module_table` ({dataset, sparsity,
    seeds}) on each subset of the transformer layers' modules ({Q,K,V,O,FFN}, {Q,K,V}, {Q,K}, {Q,V}, {K,V}),
    with the dense run of each seed; records under `<records>/esm_modules`. No protein section: no configs."""
    import dataclasses

    from .tasks.protein.task import MODULE_SUBSETS, module_patterns

    prof = profile if isinstance(profile, dict) else load_profile(profile)
    base_store = profile_store(prof)
    store = Store(records=base_store.records / "esm_modules", artifacts=base_store.artifacts)
    if "protein" not in prof:
        return [], store
    sec = section(prof, "protein")
    opts = (sec.get("notebook") or {}).get("module_table", {"dataset": "hp-s2c2", "sparsity": 0.05, "seeds": [0]})
    configs: list[RunConfig] = []
    for seed in opts["seeds"]:
        base = make_config(prof, "protein", dataset=opts["dataset"], method="omp_after", sparsity=opts["sparsity"],
                           seed=seed)
        configs.append(base.dense())
        configs += [dataclasses.replace(base, scope="custom", scope_patterns={"include": module_patterns(s)})
                    for s in MODULE_SUBSETS]
    return configs, store


def analysis_grid(profile: dict | str | None, name: str) -> tuple[list[RunConfig], Store]:
    """The runs of an analysis that keeps records of its own (`config.ANALYSES`: the oBERT roadmap, Table 1)
    and its records folder."""
    if name == "obert_roadmap":
        configs, _, store = roadmap(profile)
        return configs, store
    if name == "esm_modules":
        return esm_modules(profile)
    raise unknown("analysis", name, list(ANALYSES))


_FIELDS = {"datasets": "dataset", "models": "model", "methods": "method", "sparsities": "sparsity", "seeds": "seed",
           "folds": "fold"}


def restrict(configs: Sequence[RunConfig], **overrides: Any) -> list[RunConfig]:
    """`configs` cut to the sweep options given (datasets=, methods=, sparsities=, ...), as `grid` cuts a
    section. Dense runs stay whatever the methods and sparsities asked: the others start from them."""
    if unknown_keys := set(overrides) - set(GRID_KEYS):
        raise SMCError(f"unknown sweep option(s) {sorted(unknown_keys)}; use {', '.join(GRID_KEYS)}")
    wanted = {k: {round(float(x), 6) for x in v} if k == "sparsities" else set(v) for k, v in overrides.items() if v}
    return [c for c in configs if all(getattr(c, _FIELDS[k]) in v for k, v in wanted.items()
                                      if not (c.method == "dense" and k in ("methods", "sparsities")))]


def share_dense(configs: Sequence[RunConfig], source: Store, target: Store) -> int:
    """Copy into `target` the published dense records of `source` that `configs` start from (the dense run
    of every `after` method, IMP chain and distillation teacher, and the dense configs themselves), so an
    analysis with its own records folder (the oBERT roadmap, Table 1) never retrains a dense run its
    section has published. The copy is the record itself, byte for byte. Returns how many were copied."""
    copied = 0
    for cfg in {c.dense().key(): c.dense() for c in configs}.values():
        src, dst = result_path(cfg, source), result_path(cfg, target)
        if src.exists() and not dst.exists() and src.resolve() != dst.resolve():
            atomic_write(dst, src.read_bytes())
            copied += 1
    return copied


def _unique(runs: list[RunConfig]) -> list[RunConfig]:
    seen: dict[str, RunConfig] = {}
    for r in runs:
        seen.setdefault(r.key(), r)
    return list(seen.values())


# --------------------------------------------------------------------------- executors
def run_local(runs: Sequence[RunConfig], store: Store, data_dir: Path, progress: bool = True) -> list[RunResult]:
    """Execute runs one after another in this process (finished runs are read from the store). A run that
    another process on this host is training is put off to the end, so two sweeps over one grid share it
    instead of one waiting for the other."""
    out: dict[int, RunResult] = {}
    later = []
    bar = tqdm(total=len(runs), desc="runs", unit="run", disable=not progress)
    for i, cfg in enumerate(runs):
        bar.set_postfix_str(cfg.label(), refresh=False)
        try:
            out[i] = execute(cfg, store, data_dir, wait=False)
        except RunBusy:
            later.append(i)
            continue
        bar.update()
    for i in later:                               # by now most are finished: read, or wait for the other
        bar.set_postfix_str(runs[i].label(), refresh=False)
        out[i] = execute(runs[i], store, data_dir)
        bar.update()
    bar.close()
    return [out[i] for i in range(len(runs))]


def _remote_execute(cfg: dict, records: str, artifacts: str, data_dir: str) -> str:
    return execute(RunConfig(**cfg), Store(Path(records), Path(artifacts)), data_dir).to_json()


def run_ray(runs: Sequence[RunConfig], store: Store, data_dir: Path, progress: bool = True,
            address: str | None = None, num_cpus: int | None = None, num_gpus_per_run: float = 0,
            num_cpus_per_run: float = 1) -> list[RunResult]:
    """Execute each run as a Ray task: on the cluster at `address`, else on a local one with `num_cpus`.

    Dense runs go first (every `after` method loads their weights). On a multi-node cluster `store`
    must be a shared filesystem path.
    """
    import ray

    from .runs import atomic_write, load_result, result_path

    if address is None:                  # a local cluster: this host's resources, known before it starts
        _check_resources(num_gpus_per_run, num_cpus_per_run, _local_gpus(), num_cpus or os.cpu_count() or 1)
    started = not ray.is_initialized()
    if started:
        with _fast_ray_imports(local=address is None):
            ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                     log_to_driver=False, configure_logging=True, logging_level="ERROR")
    try:
        if address is not None:          # an existing cluster: what it offers now
            have = ray.cluster_resources()
            _check_resources(num_gpus_per_run, num_cpus_per_run, have.get("GPU", 0), have.get("CPU", 0), address)
        remote = ray.remote(num_cpus=num_cpus_per_run, num_gpus=num_gpus_per_run)(_remote_execute)
        done: dict[str, RunResult] = {}
        bar = tqdm(total=len(runs), desc="runs (ray)", unit="run", disable=not progress)
        for wave in ([r for r in runs if r.method == "dense"], [r for r in runs if r.method != "dense"]):
            pending = {}
            for cfg in wave:
                if (res := load_result(cfg, store)) is not None:
                    done[cfg.key()] = res
                    bar.update()
                else:
                    pending[remote.remote(cfg.as_dict(), str(store.records), str(store.artifacts), str(data_dir))] = cfg
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                cfg = pending.pop(ready[0])
                text = ray.get(ready[0])
                if not result_path(cfg, store).exists():  # a worker on another node without a shared store
                    atomic_write(result_path(cfg, store), text)
                done[cfg.key()] = RunResult.from_json(text)
                bar.update()
        bar.close()
        return [done[r.key()] for r in runs]
    finally:
        if started:
            ray.shutdown()


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _check_resources(gpus_per_run: float, cpus_per_run: float, gpus: float, cpus: float,
                     address: str | None = None) -> None:
    """A run asking for more than the cluster has would wait forever at 0 %: fail now, naming the key."""
    where = f"the Ray cluster at {address}" if address else "this host"
    if gpus_per_run > gpus:
        raise SMCError(f"each run asks ray.num_gpus_per_run = {gpus_per_run:g} GPU but {where} has {gpus:g}; set "
                       "`ray: {num_gpus_per_run: 0}` in the profile (CPU), or run on a cluster with GPUs")
    if cpus_per_run > cpus:
        raise SMCError(f"each run asks ray.num_cpus_per_run = {cpus_per_run:g} CPUs but {where} has {cpus:g}; "
                       "lower `ray: {num_cpus_per_run: ...}` in the profile")


@contextlib.contextmanager
def _fast_ray_imports(local: bool) -> Iterator[None]:
    """Put `smc_lib/_ray_path` first on PYTHONPATH while a local cluster starts (its processes inherit it).

    It shadows `rfc3987_syntax`, whose import-time grammar build tripled `import ray` on a loaded
    2-core host and made the raylet abort waiting for its agent (a hard 15 s limit in Ray 2.60).
    """
    if not local:
        yield
        return
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent / "_ray_path")] + ([old] if old else []))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


# --------------------------------------------------------------------------- one run
def run(task: str, dataset: str, method: str, sparsity: float = 0.0, model: str | None = None,
        seed: int = 0, fold: int | None = None, profile: str | None = None, store: Path | str | None = None,
        data_dir: Path | str | None = None, device: str | None = None) -> RunResult:
    """One run with the settings of `profile`'s section for `task` (`from smc_lib import run`)."""
    return _run(task, dataset, method, sparsity, model, seed, fold, profile, store, data_dir, device)[2]


def _run(task, dataset, method, sparsity, model, seed, fold, profile, store, data_dir,
         device) -> tuple[RunConfig, Path, RunResult]:
    """Resolve the profile's settings, then execute under its `threads`: (config, store, result)."""
    from .sweep import make_config

    prof = load_profile(profile)
    if method == "dense" and sparsity:
        raise SMCError(f"the dense run has sparsity 0, got --sparsity {sparsity}; drop --sparsity for dense")
    if fold is None:          # the section's first fold, as its sweep runs it: `smc run` hits the pipeline's cache
        fold = (section(prof, task, dataset).get("folds") or [None])[0]
    cfg = make_config(prof, task, dataset=dataset, method=method, sparsity=sparsity, model=model, seed=seed,
                      fold=fold, device=device)
    store = Store.of(store) if store else profile_store(prof)
    validate(cfg)
    check_writable(store.records, "records folder")
    check_writable(store.artifacts, "run store")
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


EXECUTORS: dict[str, Callable[..., list[RunResult]]] = {"local": run_local, "ray": run_ray}


def sweep(runs: str | Sequence[RunConfig], profile: dict | str | None = None, executor: str | None = None,
          store: Path | str | None = None, data_dir: Path | str | None = None, progress: bool = True,
          address: str | None = None, **overrides: Any) -> pd.DataFrame:
    """Run a profile section (or a list of RunConfigs) and return the tidy results table.

    `sweep("arithmetic", profile="cpu", datasets=["mawps"], executor="ray")`. Finished runs are read
    from the store, so calling it again (after a crash, or to re-plot) trains only what is missing.
    """
    prof = profile if isinstance(profile, dict) else load_profile(profile)
    configs = grid(prof, runs, **overrides) if isinstance(runs, str) else list(runs)
    executor = executor or prof.get("executor", "local")
    if executor not in EXECUTORS:
        raise SMCError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    store = Store.of(store) if store is not None else profile_store(prof)
    data_dir = Path(data_dir or prof.get("data_dir") or "data")
    for cfg in configs:                           # every mistake is caught before the first run trains
        validate(cfg)
    check_writable(store.records, "records folder")
    check_writable(store.artifacts, "run store")
    share_dense(configs, profile_store(prof), store)       # an analysis' own folder: its section's dense runs
    kwargs: dict[str, Any] = {}
    if executor == "ray":
        ray_cfg = dict(prof.get("ray") or {})
        ray_cfg["address"] = address or ray_cfg.get("address")
        kwargs = {k: v for k, v in ray_cfg.items() if v is not None}
    with torch_threads(prof.get("threads") if executor == "local" else None):   # Ray sets OMP threads per task
        results = EXECUTORS[executor](configs, store, data_dir, progress=progress, **kwargs)
    return _results.to_table(results)


def profile_store(prof: dict) -> Store:
    """The profile's records folder (`records`) and artifact folder (`store`)."""
    return Store(records=Path(prof.get("records") or f"results/{prof['profile']}"),
                 artifacts=Path(prof.get("store") or DEFAULT_STORE))


def collect(section_name: str | Sequence[RunConfig], profile: dict | str | None = None,
            store: Path | str | Store | None = None, **overrides: Any) -> tuple[list[RunResult], list[RunConfig]]:
    """The records of a section's grid (or of a list of configs) that exist — it trains nothing — and the
    configs still missing."""
    from .runs import load_result

    prof = profile if isinstance(profile, dict) else load_profile(profile)
    st = Store.of(store) if store is not None else profile_store(prof)
    found, missing = [], []
    configs = grid(prof, section_name, **overrides) if isinstance(section_name, str) else section_name
    for cfg in configs:
        res = load_result(cfg, st)
        (found.append(res) if res is not None else missing.append(cfg))
    return found, missing


def section_table(section_name: str, profile: dict | str | None = None, train_missing: bool = True,
                  executor: str | None = None, data_dir: Path | str | None = None,
                  **overrides: Any) -> tuple[pd.DataFrame, list[RunResult], list[RunConfig]]:
    """What a section notebook shows: (tidy table, records, configs still missing). With `train_missing`
    the missing runs are trained first (`sweep`); without, the table holds the published records only."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    prof = profile if isinstance(profile, dict) else load_profile(profile)
    (profile_store(prof).records / section_name).mkdir(parents=True, exist_ok=True)   # the stage's output
    profile = prof
    if train_missing:
        sweep(section_name, profile=profile, executor=executor, data_dir=data_dir, **overrides)
    found, missing = collect(section_name, profile, **overrides)
    return _results.to_table(found), found, missing


def status(profile: dict | str | None = None) -> pd.DataFrame:
    """Per section and dataset of a profile, then per analysis with runs of its own (the oBERT roadmap,
    Table 1): records published / in the grid, dense mean ± σ over its seeds, and what the trainings behind
    them cost: the grid's records plus the IMP chains' intermediate rounds (`rounds`: trainings the grid
    needs that are not grid points). `hours` is wall clock; `core_hours` the CPU time the runs' processes
    spent (a record without `cpu_s` counts wall time × threads, an upper bound), which a busy machine does
    not inflate; `projected_core_hours` scales it to every training of the grid (its mean per training so far
    × all trainings, rounds included). An analysis' dense runs are its section's (`share_dense`): they are
    neither its records nor its cost."""
    from .config import sections

    prof = profile if isinstance(profile, dict) else load_profile(profile)
    rows = []
    for name in sections(prof):
        configs = grid(prof, name)
        found, missing = collect(configs, prof)
        table = _results.to_table(found)
        band = _results.noise_band(table) if len(table) else pd.DataFrame(columns=["dataset", "dense", "sd", "seeds"])
        rows += _cost_rows(name, section(prof, name).get("datasets") or [], configs, found, missing, prof, None, band)
    for name in ANALYSES:
        configs, store = analysis_grid(prof, name)
        own = [c for c in configs if c.method != "dense"]
        found, missing = collect(own, prof, store=store)
        rows += _cost_rows(name, sorted({c.dataset for c in own}), own, found, missing, prof, store, None)
    return pd.DataFrame(rows)


def _cost_rows(name: str, datasets: list[str], configs: list[RunConfig], found: list[RunResult],
               missing: list[RunConfig], prof: dict, store: Store | None, band: pd.DataFrame | None) -> list[dict]:
    """`status`'s rows of one section or analysis: its records, IMP rounds and their cost per dataset."""
    rounds = chain_rounds(configs)
    found_rounds, missing_rounds = collect(rounds, prof, store=store)
    rows = []
    for ds in datasets:
        mine = [r for r in found if r.config["dataset"] == ds]
        paid = mine + [r for r in found_rounds if r.config["dataset"] == ds]
        trainings = len(paid) + sum(c.dataset == ds for c in missing + missing_rounds)
        core = sum(core_seconds(r) for r in paid) / 3600
        b = band[band["dataset"] == ds] if band is not None else []
        rows.append({"section": name, "dataset": ds, "records": len(mine),
                     "grid": len(mine) + sum(c.dataset == ds for c in missing),
                     "rounds": sum(c.dataset == ds for c in rounds),
                     "dense": round(float(b["dense"].iloc[0]), 2) if len(b) else None,
                     "dense_sd": round(float(b["sd"].iloc[0]), 2) if len(b) else None,
                     "dense_seeds": int(b["seeds"].iloc[0]) if len(b) else 0,
                     "hours": round(sum(r.wall_s for r in paid) / 3600, 2), "core_hours": round(core, 2),
                     "projected_core_hours": round(core / len(paid) * trainings, 1) if paid else None})
    return rows


def pending(profile: dict | str | None = None) -> pd.DataFrame:
    """What is left to compute, per section or analysis, dataset, method (the roadmap's step) and seed: the
    sparsities of the grid without a record, how many IMP rounds their chains still train, and the command
    that computes them (`smc sweep` resumes: it trains only what has no record)."""
    from .config import sections

    prof = profile if isinstance(profile, dict) else load_profile(profile)
    rows = []
    for name in sections(prof):
        rows += _pending_rows(name, grid(prof, name), prof, None, {})
    for name in ANALYSES:
        configs, store = analysis_grid(prof, name)
        labels = roadmap(prof)[1] if name == "obert_roadmap" else {}
        rows += _pending_rows(name, [c for c in configs if c.method != "dense"], prof, store, labels)
    return pd.DataFrame(rows, columns=["section", "dataset", "method", "seed", "sparsities", "rounds", "command"])


def _pending_rows(name: str, configs: list[RunConfig], prof: dict, store: Store | None,
                  labels: dict[str, str]) -> list[dict]:
    _, missing = collect(configs, prof, store=store)
    _, rounds = collect(chain_rounds(configs), prof, store=store)
    def chain(c: RunConfig) -> tuple:           # a config and its IMP rounds share everything but the sparsity
        return c.dataset, c.method, repr(c.train), c.seed

    step = {chain(c): labels.get(c.key(), c.method) for c in configs}
    groups: dict[tuple, dict] = {}
    for c, is_round in [(c, False) for c in missing] + [(c, True) for c in rounds]:
        g = groups.setdefault((c.dataset, step[chain(c)], c.method, c.seed), {"sparsities": [], "rounds": 0})
        if is_round:
            g["rounds"] += 1
        else:
            g["sparsities"].append(c.sparsity)
    return [{"section": name, "dataset": ds, "method": label, "seed": seed,
             "sparsities": ", ".join(f"{s:g}" for s in sorted(g["sparsities"])), "rounds": g["rounds"],
             "command": f"smc sweep {name} --dataset {ds} --method {method}"}
            for (ds, label, method, seed), g in groups.items()]


def chain_rounds(configs: Sequence[RunConfig]) -> list[RunConfig]:
    """The IMP chains' intermediate rounds of `configs` that are not themselves among them (LTH at 1 − 0.8^k
    for k = 1, 3, 5, 7 also trains k = 2, 4, 6): each a run with a record of its own."""
    from .methods import get_method
    from .schedules import imp_rounds

    have = {c.key() for c in configs}
    out: dict[str, RunConfig] = {}
    for c in configs:
        if c.method == "dense" or get_method(c.method).timing != "iterative":
            continue
        rate = {**get_method(c.method).defaults, **c.method_options}.get("rate", 0.2)
        for s in imp_rounds(c.sparsity, rate)[:-1]:
            r = c.at(s)
            if r.key() not in have:
                out.setdefault(r.key(), r)
    return list(out.values())


def core_seconds(res: RunResult) -> float:
    """CPU seconds a run's training cost: its `cpu_s`, or (older records) wall time × threads."""
    return res.cpu_s if res.cpu_s is not None else res.wall_s * (res.threads or 1)


def cli_sweep(section_name: str, profile: str | None = None, executor: str | None = None,
              address: str | None = None, out: str | None = None, **overrides: Any) -> pd.DataFrame:
    """`smc sweep SECTION`: run a section's grid, or an analysis' runs (`obert_roadmap`, `esm_modules`) into
    its own records folder, and write the table to `out` (CSV) when given."""
    overrides = {k: v for k, v in overrides.items() if v not in (None, (), [])}
    if out:
        check_writable(Path(out).parent, "--out")
    if section_name in ANALYSES:
        configs, store = analysis_grid(profile, section_name)
        table = sweep(restrict(configs, **overrides), profile=profile, executor=executor, address=address,
                      store=store)
    else:
        table = sweep(section_name, profile=profile, executor=executor, address=address, **overrides)
    if out:
        _results.save(table, out)
    return table
