"""Profiles: the YAML files under `params/` that say which runs a section sweeps and with what settings.

`params/cpu.yaml` is the default (small, embedded); `params/paper.yaml` carries Tables 3-6 of
"Sparsity May Cry" (Liu, Chen et al., ICLR 2023). `params.yaml` at the repository root names the
active profile (`profile: cpu`). A profile is validated when loaded, so a typo fails in a second with
the file and the fix, not after an hour of training.

Relative paths in a profile (`data_dir`, `reference_dir`, `store`, `out_dir`) are resolved against the
checkout (the folder holding `params/`), so a notebook opened in JupyterLab (cwd `notebooks/`) reads and
writes the same files as `dvc repro` (cwd the checkout).

Layout (plain data): global keys (`device`, `seeds`, `executor`, `ray`, ...) and one section per task
family (`arithmetic:`, `commonsense:`, ...). A section lists `datasets`, `models`, `methods`,
`sparsities`, `seeds`, `folds` and the settings passed through to the code: `task` (Task(**params)),
`train` (TrainConfig fields), `method_options` ({method: Method(**options)}), `scope` (all | encoder | custom) with `scope_patterns`
({include: [regex], exclude: [regex]}, see scope.prunable), `layerwise`,
`per_model` / `per_dataset` ({name: {any section key}}, merged in that order), `substitutes` ({dataset: what stood in, shown in the
report}) and `notebook` (free-form knobs for the section's notebook). `dense_seeds` (default: `seeds`) are
the seeds of the dense runs, which give every curve its noise band; sparse methods run on `seeds`.

`floors` ({dataset: metric}) is the dense score a section must reach for its curves to mean something (the
findings page says whether the records meet it). `budgets` ({name: {sections: [...], core_hours: N, cuts:
text}}) is what a group of sections' grid may cost cold, in core-hours of training; the findings page
measures it from the records (`sweep.status`) and shows the profile's `cuts` (what was cut to fit, and why).

`records` (default `results/<profile>`) is where run records go (small JSON; the default profile's are
committed); `store` holds the artifacts (checkpoints, weights; never in git). A section with
`implemented: false` documents a paper setting that no task module runs yet.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import SMCError

PAPER_SPARSITIES = tuple(round(1 - 0.8**k, 4) for k in range(1, 11))  # 0.2, 0.36, 0.488, ... 0.8926
DEFAULT_PROFILE = "cpu"
GLOBAL_KEYS = {
    "profile": str, "device": str, "data_dir": str, "reference_dir": str, "store": str, "records": str,
    "out_dir": str,
    "executor": str, "ray": dict, "seeds": list, "dense_seeds": list, "sparsities": list, "threads": int,
    "budgets": dict,
}
SECTION_KEYS = {
    "implemented": bool, "datasets": list, "models": list, "methods": list, "sparsities": list,
    "seeds": list, "dense_seeds": list, "folds": list, "scope": str, "scope_patterns": dict, "layerwise": bool, "task": dict,
    "train": dict, "method_options": dict, "per_dataset": dict, "per_model": dict, "substitutes": dict,
    "notebook": dict, "floors": dict,
}
INHERITED = ("seeds", "dense_seeds", "sparsities")  # section keys that fall back to the global value
OVERRIDES = ("per_model", "per_dataset")  # applied in this order
MERGED = ("task", "train", "method_options")
OVERRIDABLE = set(SECTION_KEYS) - {"per_dataset", "per_model", "datasets", "models", "implemented"}  # override keys merged into the section's mapping, not replaced
PATHS = {"data_dir": "data", "reference_dir": "../shared/reference", "store": "outputs/runs", "out_dir": "outputs"}
RAY_KEYS = {"address", "num_cpus", "num_gpus_per_run", "num_cpus_per_run"}
ANALYSES = ("obert_roadmap", "esm_modules")   # analyses with runs of their own (`sweep.analysis_grid`)
EXECUTORS = ("local", "ray")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def repo_root() -> Path:
    """The checkout this package lives in (profiles and params.yaml are found relative to it)."""
    return Path(__file__).resolve().parent.parent


def active_profile(params_file: str | Path | None = None) -> str:
    """The profile named by `params.yaml` (`profile: cpu`), the switch `dvc exp run -S profile=paper` sets."""
    path = Path(params_file) if params_file else _first_existing(["params.yaml", repo_root() / "params.yaml"])
    if path is None or not path.exists():
        return DEFAULT_PROFILE
    data = _read_yaml(path)
    name = data.get("profile", DEFAULT_PROFILE) if isinstance(data, dict) else None
    if not isinstance(name, str):
        raise SMCError(f"{path}: `profile` must be a profile name such as cpu or paper")
    return name


def profile_path(profile: str | Path | None = None) -> Path:
    """`cpu` → params/cpu.yaml (relative to the working directory, else to the checkout); a path stays."""
    profile = profile or active_profile()
    p = Path(profile)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise SMCError(f"profile file {p} not found; pass an existing YAML file or a name like cpu")
        return p
    found = _first_existing([Path("params") / f"{profile}.yaml", repo_root() / "params" / f"{profile}.yaml"])
    if found is None:
        known = sorted(f.stem for f in (repo_root() / "params").glob("*.yaml"))
        raise SMCError(f"unknown profile {profile!r}; choose one of: {', '.join(known)} (files params/<name>.yaml)")
    return found


def load_profile(profile: str | Path | None = None, check_registries: bool = True) -> dict[str, Any]:
    """Read and validate a profile; returns plain data with `profile` (name) and `path` filled in."""
    path = profile_path(profile)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise SMCError(f"{path}: a profile must be a mapping of keys (device, seeds, <task sections>)")
    data.setdefault("profile", path.stem)
    data.setdefault("device", "auto")
    data.setdefault("seeds", [0])
    data.setdefault("executor", "local")
    validate(data, path, check_registries)
    data["path"] = str(path)
    base = path.resolve().parent.parent if path.resolve().parent.name == "params" else path.resolve().parent
    paths = {**PATHS, "records": f"results/{data['profile']}"}
    for key, default in paths.items():  # relative to the checkout, so JupyterLab (cwd notebooks/) agrees with DVC
        data[key] = os.path.normpath(base / (data.get(key) or default))
    return data


def sections(profile: dict[str, Any], implemented_only: bool = True) -> list[str]:
    """The task sections of a profile, in file order (skipping `implemented: false` ones by default)."""
    names = [k for k, v in profile.items() if k not in GLOBAL_KEYS and k != "path" and isinstance(v, dict)]
    return [n for n in names if not implemented_only or profile[n].get("implemented", True)]


def section(profile: dict[str, Any], name: str, dataset: str | None = None,
            model: str | None = None) -> dict[str, Any]:
    """One section with the global defaults filled in, then `per_model[model]` and `per_dataset[dataset]`."""
    if name not in profile or not isinstance(profile[name], dict):
        raise SMCError(f"profile {profile.get('profile')!r} has no section {name!r}; "
                       f"add `{name}:` to {profile.get('path', 'the profile')} or choose one of: "
                       f"{', '.join(sections(profile))}")
    out = {k: profile[k] for k in INHERITED if k in profile}
    out.update({k: v for k, v in profile[name].items() if k not in OVERRIDES})
    for key, which in zip(OVERRIDES, (model, dataset)):
        for k, v in (profile[name].get(key) or {}).get(which, {}).items() if which is not None else ():
            out[k] = {**(out.get(k) or {}), **v} if k in MERGED else v
    return out


def validate(data: dict[str, Any], path: Path | str, check_registries: bool = True) -> None:
    """Raise SMCError (file, problem, fix) on any unknown key, name or out-of-range value."""
    for key, value in data.items():
        if key in GLOBAL_KEYS:
            _check_type(path, key, value, GLOBAL_KEYS[key])
        elif not isinstance(value, dict):
            raise SMCError(f"{path}: unknown key {key!r}; global keys are {', '.join(sorted(GLOBAL_KEYS))}, "
                           "task sections are mappings")
    if not _DEVICE.match(str(data.get("device"))):
        raise SMCError(f"{path}: device {data.get('device')!r} is not one of auto, cpu, cuda, cuda:N, mps")
    threads = data.get("threads")
    if threads is not None and (isinstance(threads, bool) or threads < 1):
        raise SMCError(f"{path}: threads must be a positive integer (torch threads per run) or null, got {threads!r}")
    if data.get("executor") not in EXECUTORS:
        raise SMCError(f"{path}: executor {data.get('executor')!r} must be one of {', '.join(EXECUTORS)}")
    if unknown := set(data.get("ray") or {}) - RAY_KEYS:
        raise SMCError(f"{path}: unknown ray key(s) {sorted(unknown)}; use {', '.join(sorted(RAY_KEYS))}")
    _check_sparsities(path, "sparsities", data.get("sparsities", []))
    _check_budgets(path, data.get("budgets") or {}, [*sections(data, implemented_only=False), *ANALYSES])
    for name in sections(data, implemented_only=False):
        _validate_section(data[name], name, path, check_registries)


def _check_budgets(path, budgets: dict, names: list[str]) -> None:
    for name, b in budgets.items():
        where = f"{path}: budgets.{name}"
        if not isinstance(b, dict) or set(b) - {"sections", "core_hours", "cuts"}:
            raise SMCError(f"{where} must map sections (a list), core_hours (a number) and cuts (text)")
        if not isinstance(b.get("sections"), list) or not b["sections"]:
            raise SMCError(f"{where}.sections must list the sections (or analyses) the budget covers, e.g. [arithmetic]")
        if unknown := [x for x in b["sections"] if x not in names]:
            raise SMCError(f"{where}.sections: no section or analysis {unknown[0]!r} in this profile; choose from "
                           f"{', '.join(names)}")
        hours = b.get("core_hours")
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0:
            raise SMCError(f"{where}.core_hours must be a positive number of core-hours, got {hours!r}")
        if not isinstance(b.get("cuts", ""), str):
            raise SMCError(f"{where}.cuts must be text (what was cut to fit the budget, and why)")


def _validate_section(sec: dict, name: str, path, check_registries: bool) -> None:
    where = f"{path}: section {name!r}"
    for key, value in sec.items():
        if key not in SECTION_KEYS:
            raise SMCError(f"{where}: unknown key {key!r}; section keys are {', '.join(sorted(SECTION_KEYS))}")
        _check_type(where, key, value, SECTION_KEYS[key])
    if not sec.get("implemented", True):
        return  # documented paper settings for a task no module implements yet
    _check_sparsities(where, "sparsities", sec.get("sparsities", []))
    if unknown := set(sec.get("scope_patterns") or {}) - {"include", "exclude"}:
        raise SMCError(f"{where}: scope_patterns takes include / exclude regex lists, not {sorted(unknown)}")
    for key in OVERRIDES:
        for which, over in (sec.get(key) or {}).items():
            if not isinstance(over, dict) or set(over) - OVERRIDABLE:
                raise SMCError(f"{where}: {key}.{which} must map section keys (train, task, folds, ...) to values")
            _check_sparsities(where, f"{key}.{which}.sparsities", over.get("sparsities", []))
    if check_registries:  # needs the task, method and training modules (imports torch)
        _check_names(sec, name, where)
        _check_train_keys(where, sec.get("train") or {})
        for key in OVERRIDES:
            for which, over in (sec.get(key) or {}).items():
                _check_train_keys(f"{where} {key}.{which}", over.get("train") or {})


def _check_names(sec: dict, name: str, where: str) -> None:
    from .methods import method_names
    from .tasks import task_names, get_task

    if name not in task_names():
        raise SMCError(f"{where}: no task module registers {name!r} (known: {', '.join(task_names())}); "
                       "rename the section or mark it `implemented: false`")
    known_ds = tuple(get_task(name).datasets)
    for ds in list(sec.get("datasets", [])) + list((sec.get("per_dataset") or {})):
        if ds not in known_ds:
            raise SMCError(f"{where}: unknown dataset {ds!r}; choose from {', '.join(known_ds)}")
    methods = method_names()
    for m in list(sec.get("methods", [])) + list((sec.get("method_options") or {})):
        if m not in methods:
            raise SMCError(f"{where}: unknown method {m!r}; choose from {', '.join(methods)}")


def _check_train_keys(where: str, train: dict) -> None:
    from .train import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed", "device"}  # set by seeds / device
    if unknown := set(train) - fields:
        raise SMCError(f"{where}: unknown train setting(s) {sorted(unknown)}; TrainConfig fields are "
                       f"{', '.join(sorted(fields))}")


def _check_sparsities(where, key: str, values: list) -> None:
    if not isinstance(values, list):
        raise SMCError(f"{where}: {key} must be a list such as [0.2, 0.36, 0.488] (1 - 0.8^k)")
    for s in values:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s < 1.0:
            raise SMCError(f"{where}: {key} has {s!r}, outside [0, 1); use fractions such as 0.2, 0.36, 0.488")


def _check_type(where, key: str, value, expected: type) -> None:
    if value is not None and not isinstance(value, expected):
        raise SMCError(f"{where}: {key} must be a {expected.__name__}, got {type(value).__name__} {value!r}")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SMCError(f"{path}: malformed YAML{at} ({getattr(e, 'problem', e)}); fix the syntax there") from None
    except OSError as e:
        raise SMCError(f"cannot read {path}: {e.strerror}; check the path") from None


def _first_existing(candidates: list) -> Path | None:
    return next((Path(c) for c in candidates if Path(c).exists()), None)
