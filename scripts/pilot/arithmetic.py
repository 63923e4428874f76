"""CPU reproduction for the arithmetic section: dense GTS with the packaged MiniLM embedder.

`python -m scripts.pilot.arithmetic` trains dense GTS (Table 4: hidden 512, 2 layers, Adam, LR 1e-3,
embedder LR 8e-6, weight decay 1e-5, batch 4 / 8 for SVAMP, dropout 0.5, beam 5) through
`smc_lib.train.fit` on MAWPS fold 0, ASDiv-A fold 0 and SVAMP, logs dev answer accuracy after every
epoch, and prints our best accuracy beside the paper's dense number (GTS with RoBERTa-base, 5-fold mean
for MAWPS / ASDiv-A; `<reference_dir>/arithmetic_paper.csv`). Fewer epochs than the paper's 50 (cosine
decay over the epochs run) keep it within CPU reach; `--epochs 50` is the paper's schedule.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import random
import time
from pathlib import Path

import torch

from scripts.pilot.common import EpochLog
from smc_lib.errors import run_main
from smc_lib.tasks.arithmetic.data import DATASETS
from smc_lib.tasks.arithmetic.task import ArithmeticTask
from smc_lib.train import fit

PAPER_NAMES = {"mawps": "MAWPS", "asdiv-a": "ASDiv-A", "svamp": "SVAMP", "gts": "GTS", "graph2tree": "Graph2Tree"}


def paper_dense(reference_dir: Path | str, model: str, dataset: str) -> float | None:
    """The paper's dense accuracy for (model, dataset) from arithmetic_paper.csv; None if absent."""
    path = Path(reference_dir) / "arithmetic_paper.csv"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if (row["model"], row["dataset"], row["method"]) == (PAPER_NAMES[model], PAPER_NAMES[dataset], "dense"):
                return float(row["accuracy"])
    return None


def shuffled_subset(task: ArithmeticTask, n: int, seed: int) -> None:
    """Train `task` on n of its training problems shuffled with `seed`, not the file's first n (SVAMP's
    training file lists MAWPS's problems first, then ASDiv-A's). Call before anything reads the problems."""
    rows = list(task.problems("train"))
    random.Random(seed).shuffle(rows)
    task.problems("train")[:] = rows[:n]


def run_one(args: argparse.Namespace, dataset: str) -> dict:
    fold = None if dataset == "svamp" else args.fold
    shuffled = args.max_train and args.subset_seed is not None
    task = ArithmeticTask(dataset, args.model, args.data_dir, fold=fold, seed=args.seed, embedder=args.embedder,
                          max_train=None if shuffled else args.max_train, max_eval=args.max_eval, hidden=args.hidden)
    if shuffled:
        shuffled_subset(task, args.max_train, args.subset_seed)
    cfg = task.default_train_config()
    if args.batch_size:
        cfg = dataclasses.replace(cfg, batch_size=args.batch_size)
    if args.embedder_lr:
        cfg = dataclasses.replace(cfg, param_groups=[{"pattern": r"^embedder\.", "lr": args.embedder_lr}])
    spe = task.num_batches("train", cfg.batch_size)
    cfg = dataclasses.replace(cfg, epochs=args.epochs, eval_every=spe, device=args.device, seed=args.seed,
                              progress=args.progress, select_best=False)  # dev is the test split: last epoch
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    EpochLog(task, out / "epochs.jsonl")
    start = time.perf_counter()
    result = fit(task, task.build_model(), cfg, checkpoint=out / f"{args.model}_{dataset}.ckpt" if args.resume else None)
    curve = [round(h["accuracy"], 2) for h in result.history]
    return {"model": args.model, "dataset": dataset, "fold": fold, "embedder": args.embedder,
            "epochs": args.epochs, "ours": round(result.metrics["accuracy"], 2),
            "per_epoch": curve,
            "paper": paper_dense(args.reference_dir, args.model, dataset),
            "minutes": round((time.perf_counter() - start) / 60, 1)}


def format_table(rows: list[dict]) -> str:
    lines = [f"{'model':6s} {'dataset':8s} {'fold':>4s} {'epochs':>6s} {'ours':>6s} {'paper':>6s}  per-epoch dev accuracy"]
    for r in rows:
        paper = f"{r['paper']:.2f}" if r["paper"] is not None else "n/a"
        fold = "-" if r["fold"] is None else str(r["fold"])
        lines.append(f"{r['model']:6s} {r['dataset']:8s} {fold:>4s} {r['epochs']:>6} {r['ours']:6.2f} {paper:>6s}  "
                     f"{r['per_epoch']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.pilot.arithmetic", description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--model", default="gts", choices=["gts", "graph2tree"])
    p.add_argument("--embedder", default="minilm", help="'minilm' (packaged), a hub name / local path, or 'random'")
    p.add_argument("--epochs", type=float, default=8, help="training epochs (paper: 50)")
    p.add_argument("--fold", type=int, default=0, help="fold of MAWPS / ASDiv-A")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--reference-dir", default="../shared/reference")
    p.add_argument("--out", default="outputs/pilot/arithmetic", help="per-epoch log, results and checkpoints")
    p.add_argument("--hidden", type=int, default=None, help="GTS hidden size (default: Table 4's 512)")
    p.add_argument("--batch-size", type=int, default=None, help="default: Table 4's (4; 8 for SVAMP)")
    p.add_argument("--embedder-lr", type=float, default=None, help="LR of the pretrained embedder (Table 4: 8e-6)")
    p.add_argument("--max-train", type=int, default=None, help="use only the first N training problems")
    p.add_argument("--subset-seed", type=int, default=None,
                   help="with --max-train: N problems of the training set shuffled with this seed, not its first N")
    p.add_argument("--max-eval", type=int, default=None, help="score only the first N dev problems")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared 2-core box)")
    p.add_argument("--resume", action="store_true", help="checkpoint every epoch and resume from it")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for dataset in args.datasets:
        rows.append(run_one(args, dataset))
        with open(Path(args.out) / "results.json", "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
        print(format_table(rows[-1:]), flush=True)
    print(format_table(rows), flush=True)
    return rows


if __name__ == "__main__":
    run_main(main)
