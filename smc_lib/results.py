"""The tidy results table every section writes and the report reads, and the "failing sparsity" summary.

One row per (run, metric): task, dataset, model, method, sparsity, seed, fold, metric, value,
achieved_sparsity (over the pruned scope), achieved_sparsity_all (over every parameter), wall_s,
git_revision (the code that computed the record).
"Failing sparsity" follows the paper's reading of its figures (Liu, Chen et al., ICLR 2023, section 4)
with the dense runs' noise band: the lowest sparsity at which a method's metric falls below the dense
mean by more than max(1 point, 2 σ of the dense seeds) (means over seeds and folds).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

COLUMNS = ["task", "dataset", "model", "method", "sparsity", "seed", "fold", "metric", "value",
           "achieved_sparsity", "achieved_sparsity_all", "wall_s", "git_revision"]
RUN_KEYS = ["task", "dataset", "model", "method", "sparsity", "seed", "fold"]
FAIL_MARGIN = 1.0  # points below dense


def to_table(results: Iterable) -> pd.DataFrame:
    """RunResults → the tidy table, sorted so that the same runs always give the same table."""
    rows = []
    for r in results:
        c = r.config
        for metric, value in r.metrics.items():
            rows.append({**{k: c[k] for k in RUN_KEYS}, "metric": metric, "value": float(value),
                         "achieved_sparsity": float(r.achieved_sparsity),
                         "achieved_sparsity_all": float("nan") if r.achieved_sparsity_all is None
                         else float(r.achieved_sparsity_all), "wall_s": float(r.wall_s),
                         "git_revision": r.git_revision})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["fold"] = table["fold"].astype("Int64")
    return table.sort_values(RUN_KEYS + ["metric"], kind="stable").reset_index(drop=True)


def points(configs: Iterable) -> pd.DataFrame:
    """RunConfigs (e.g. the ones `sweep.collect` finds without a record) → their RUN_KEYS, one row each."""
    rows = [{k: getattr(c, k) for k in RUN_KEYS} for c in configs]
    out = pd.DataFrame(rows, columns=RUN_KEYS)
    out["fold"] = out["fold"].astype("Int64")
    return out


def save(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the table as CSV (creating the folder); the file the report and DVC pick up."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


def load(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate results CSVs (missing files are skipped) into one table with the tidy columns."""
    frames = [pd.read_csv(p) for p in paths if Path(p).exists()]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    table["fold"] = table["fold"].astype("Int64")
    return table.reindex(columns=COLUMNS)


def primary(table: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Rows of each task's primary metric: `metric` if given, else the registered task's, else the only one."""
    if metric is not None:
        return table[table["metric"] == metric]
    parts = []
    for task, part in table.groupby("task", sort=False):
        names = part["metric"].unique()
        parts.append(part[part["metric"] == _primary_metric(task, names)])
    return pd.concat(parts) if parts else table


def _primary_metric(task: str, names) -> str:
    if len(names) == 1:
        return names[0]
    try:
        from .tasks import get_task
        return get_task(task).primary_metric
    except Exception:  # noqa: BLE001 - an unregistered task in a CSV still gets a summary
        return "accuracy" if "accuracy" in names else sorted(names)[0]


def curves(table: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Mean (and count) over seeds and folds: one value per task/dataset/model/method/sparsity."""
    t = primary(table, metric)
    keys = ["task", "dataset", "model", "method", "sparsity", "metric"]
    return (t.groupby(keys, as_index=False)
             .agg(value=("value", "mean"), n=("value", "size"),
                  achieved_sparsity=("achieved_sparsity", "mean")))


def noise_band(table: pd.DataFrame, metric: str | None = None, floor: float = FAIL_MARGIN) -> pd.DataFrame:
    """Per task/dataset/model: the dense mean, σ over its seeds (0 for one seed), the number of seeds, and
    the margin max(`floor`, 2 σ) by which a point must fall below dense to count as failing."""
    t = primary(table, metric)
    g = t[t["method"] == "dense"].groupby(["task", "dataset", "model"])["value"]
    out = pd.DataFrame({"dense": g.mean(), "sd": g.std(ddof=1).fillna(0.0), "seeds": g.size()}).reset_index()
    out["margin"] = out["sd"].mul(2).clip(lower=floor)
    return out


def failing_sparsity(table: pd.DataFrame, margin: float = FAIL_MARGIN, metric: str | None = None) -> pd.DataFrame:
    """Per task/dataset/model/method: dense mean, the margin (max(`margin`, 2 σ of the dense seeds)), and the
    lowest sparsity more than the margin below dense.

    Columns: task, dataset, model, method, dense, margin, failing_sparsity (NaN: never failed at the
    sparsities run), max_sparsity (the highest sparsity run).
    """
    c = curves(table, metric)
    group = ["task", "dataset", "model"]
    band = noise_band(table, metric, margin).set_index(group)
    rows = []
    for (task, ds, model, method), part in c[c["method"] != "dense"].groupby(group + ["method"], sort=True):
        base, m = (band.loc[(task, ds, model), ["dense", "margin"]] if (task, ds, model) in band.index
                   else (None, margin))
        failed = part[part["value"] < base - m]["sparsity"] if base is not None else part["sparsity"][:0]
        rows.append({"task": task, "dataset": ds, "model": model, "method": method,
                     "dense": base, "margin": m, "failing_sparsity": failed.min() if len(failed) else float("nan"),
                     "max_sparsity": part["sparsity"].max()})
    return pd.DataFrame(rows, columns=group + ["method", "dense", "margin", "failing_sparsity", "max_sparsity"])


def failing_summary(table: pd.DataFrame, margin: float = FAIL_MARGIN) -> pd.DataFrame:
    """The report's table: a row per method, a column per task/dataset/model, cells like "36%" or "> 74%"."""
    f = failing_sparsity(table, margin)
    if f.empty:
        return pd.DataFrame()
    f["column"] = f["task"] + " / " + f["dataset"] + " / " + f["model"]
    f["cell"] = [f"{s:.0%}" if pd.notna(s) else f"> {m:.0%}" for s, m in zip(f["failing_sparsity"], f["max_sparsity"])]
    out = f.pivot(index="method", columns="column", values="cell").fillna("—")
    out.index.name, out.columns.name = None, "method"  # one header row, "method" in its corner
    return out


def module_table(records: Iterable, paper: pd.DataFrame | None = None, min_noise: float = FAIL_MARGIN) -> pd.DataFrame:
    """Table 1 of the paper (ESM module sensitivity) from records of one dataset: dense runs, and OMP-after
    runs whose scope is a module subset ("Q,K,V" ...: `scope_patterns.include` equal to
    `module_patterns(subset)`). A row per subset (dense first): seeds, mean accuracy, the half-width of its
    normal 95 % CI, the paper's value (`paper`: columns modules, value), the gap below dense, the noise (the
    two CIs together, at least `min_noise` points) and whether the gap is within it."""
    import numpy as np

    from .tasks.protein.task import MODULE_SUBSETS, module_patterns

    def subset(r) -> str | None:
        if r.config["method"] == "dense":
            return "dense"
        pats = (r.config.get("scope_patterns") or {}).get("include")
        return next((s for s in MODULE_SUBSETS if module_patterns(s) == pats), None)

    cells = pd.DataFrame([{"modules": subset(r), "accuracy": r.metrics["accuracy"]} for r in records],
                         columns=["modules", "accuracy"])
    rows = []
    for name in ("dense", *MODULE_SUBSETS):
        acc = cells[cells["modules"] == name]["accuracy"]
        k = len(acc)
        ref = paper[paper["modules"] == name]["value"] if paper is not None else pd.Series(dtype=float)
        rows.append({"modules": name, "seeds": k, "ours": acc.mean() if k else np.nan,
                     "ci95": 1.96 * acc.std(ddof=1) / np.sqrt(k) if k > 1 else np.nan,
                     "paper": float(ref.iloc[0]) if len(ref) else np.nan})
    dense = rows[0]
    for r in rows[1:]:
        r["gap"] = dense["ours"] - r["ours"]
        r["noise"] = max(min_noise, float(np.nansum([r["ci95"], dense["ci95"]])))
        r["within_noise"] = None if np.isnan(r["gap"]) else bool(abs(r["gap"]) <= r["noise"])
    return pd.DataFrame(rows, columns=["modules", "seeds", "ours", "ci95", "paper", "gap", "noise", "within_noise"])
