"""What every pilot does: train dense through `smc_lib.train.fit`, logging the metrics after each epoch, and
append its summary row to `<out>/results.jsonl`."""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from smc_lib.train import FitResult, TrainConfig, fit


def add_run_args(p: argparse.ArgumentParser, section: str) -> None:
    """The options every pilot shares: data folder, output folder, threads, seed."""
    p.add_argument("--data-dir", default="data")
    p.add_argument("--out", default=f"outputs/pilot/{section}", help="per-epoch log and results")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)


class EpochLog:
    """Wraps `task.evaluate` so each evaluation `fit` makes (one per epoch) is printed as it happens."""

    def __init__(self, task, log_path: Path):
        self.task, self.log_path = task, log_path
        self.evaluate, self.calls, self.start = task.evaluate, 0, time.perf_counter()
        task.evaluate = self

    def __call__(self, model, split: str = "dev") -> dict[str, float]:
        self.calls += 1
        metrics = self.evaluate(model, split)
        rec = {"dataset": self.task.dataset, "epoch": self.calls, **metrics,
               "minutes": round((time.perf_counter() - self.start) / 60, 2)}
        print(json.dumps(rec), flush=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        return metrics


def fit_logged(task, cfg: TrainConfig, out: Path | str, model=None, **changes) -> tuple[FitResult, float]:
    """(result, minutes) of `fit` on `model` (default: a fresh one), evaluated after every epoch
    (`<out>/epochs.jsonl`); the reported metrics are the last epoch's (the evaluation split is the test
    split: no model selection)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spe = task.num_batches("train", changes.get("batch_size", cfg.batch_size))
    cfg = dataclasses.replace(cfg, eval_every=spe, select_best=False, **changes)
    start = time.perf_counter()
    EpochLog(task, out / "epochs.jsonl")
    result = fit(task, model if model is not None else task.build_model(), cfg)
    return result, (time.perf_counter() - start) / 60


def report(row: dict, out: Path | str) -> dict:
    """Print the summary row and append it to `<out>/results.jsonl`."""
    with open(Path(out) / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
    return row
