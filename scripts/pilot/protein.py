"""CPU pilot for the protein section: a small ESM-2 trained from scratch on HotProtein, beside its baselines.

`python -m scripts.pilot.protein --dataset hp-s2c2` trains a randomly initialised ESM-2 of the given size
(no protein weights can be had offline here) through `smc_lib.train.fit`, logs test accuracy after every
epoch, and prints it beside the floors of the science issue: the test split's majority class + 10 points,
and logistic regression on amino-acid composition (`baselines.composition_logreg`). The number reported is the last
epoch's (the test split is the only evaluation split held; no model selection).
"""
from __future__ import annotations

import argparse

import torch

from scripts.pilot.common import add_run_args, fit_logged, report
from smc_lib.errors import run_main
from smc_lib.tasks.protein import baselines
from smc_lib.tasks.protein.data import DATASETS
from smc_lib.tasks.protein.task import ProteinTask


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.pilot.protein", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="hp-s2c2", choices=DATASETS)
    p.add_argument("--epochs", type=float, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-length", type=int, default=256, help="residues (longer sequences are cropped)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    add_run_args(p, "protein")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    task = ProteinTask(args.dataset, "esm2-tiny", args.data_dir, seed=args.seed, max_length=args.max_length,
                       layers=args.layers, embed_dim=args.embed_dim, heads=args.heads)
    result, minutes = fit_logged(task, task.default_train_config(), args.out, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    train, test = task.examples("train"), task.examples("test")
    return report({"dataset": args.dataset, "layers": args.layers, "embed_dim": args.embed_dim,
                   "max_length": args.max_length, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                   "per_epoch": [round(h["accuracy"], 2) for h in result.history],
                   "ours": round(result.metrics["accuracy"], 2),
                   "majority": round(baselines.majority(train, test), 2),
                   "composition_logreg": round(baselines.composition_logreg(train, test), 2),
                   "minutes": round(minutes, 1)}, args.out)


if __name__ == "__main__":
    run_main(main)
