"""CPU evidence for the commonsense section: dense MiniLM fine-tuned on CommonsenseQA train, scored on dev.

`python -m scripts.pilot.commonsense` prints our dev accuracy beside chance (20 %, five choices) and the
paper's dense RoBERTa-large number (77.3, Liu, Chen et al. ICLR 2023, section 4.1, read from
`<reference_dir>/paper_text.csv`). It trains through `smc_lib.train.fit`, the one training loop, with
Table 3's optimizer (AdamW, betas (0.9, 0.98), eps 1e-6, weight decay 0.01, linear warm-up + decay) and a
larger learning rate, as a 22M-parameter MiniLM needs. The defaults (700 steps of 16, about 1.15 epochs;
609 steps = one epoch) took 62 minutes on one thread with the second core busy, and gave 45.5 %. A fixed
slice of dev is probed every --probe-every steps as a learning curve; the number reported is the full dev
set after the last step (no model selection).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from pathlib import Path

import torch

from smc_lib.errors import run_main
from smc_lib.tasks.commonsense import CommonsenseTask
from smc_lib.train import fit


def paper_dense(reference_dir: Path, dataset: str = "CSQA") -> float | None:
    """The paper's dense accuracy for `dataset` from paper_text.csv (None when the file is absent)."""
    path = Path(reference_dir) / "paper_text.csv"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["task"] == "commonsense" and row["dataset"] == dataset and row["method"] == "dense":
                return float(row["value"])
    return None


class DevProbe:
    """A `fit` hook that logs accuracy on a fixed slice of dev every `every` steps (a learning curve in the
    log; the reported number is the full dev set scored by `fit` at the end, with no model selection)."""

    def __init__(self, task: CommonsenseTask, every: int):
        self.task, self.every, self.start = task, every, time.perf_counter()

    def on_step_end(self, state) -> None:
        if self.every and state.step % self.every == 0 and state.step < state.total_steps:
            acc = self.task.evaluate(state.model, "dev")["accuracy"]
            state.model.train()
            minutes = (time.perf_counter() - self.start) / 60
            print(f"step {state.step}/{state.total_steps}  loss {float(state.loss):.3f}  probe dev accuracy "
                  f"{acc:.1f} ({len(self.task.examples('dev'))} questions)  {minutes:.1f} min", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.pilot.commonsense", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="data", help="folder holding commonsense/csqa/ (default: data)")
    p.add_argument("--reference-dir", default="../shared/reference", help="folder holding paper_text.csv")
    p.add_argument("--model", default="minilm", help="hub name or local path; 'minilm' = packaged MiniLM")
    p.add_argument("--steps", type=int, default=700, help="optimizer steps (batch 16: 609 = 1 epoch)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=float, default=0.06, help="warm-up steps, or a fraction of --steps")
    p.add_argument("--max-length", type=int, default=64, help="tokens per (question, choice) pair")
    p.add_argument("--max-train", type=int, default=None, help="use only this many training questions")
    p.add_argument("--max-eval", type=int, default=None, help="score only this many dev questions")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (on 2 cores shared with other jobs 1 thread measured faster than 2)")
    p.add_argument("--probe-every", type=int, default=100, help="log accuracy on --probe dev questions")
    p.add_argument("--probe", type=int, default=200)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    task = CommonsenseTask("csqa", args.model, args.data_dir, seed=args.seed, max_length=args.max_length,
                           max_train=args.max_train, max_eval=args.max_eval)
    cfg = dataclasses.replace(task.default_train_config(), steps=args.steps, batch_size=args.batch_size,
                              lr=args.lr, warmup_steps=args.warmup, device=args.device, seed=args.seed,
                              eval_every=None, select_best=False)
    start = time.perf_counter()
    probe = CommonsenseTask("csqa", args.model, args.data_dir, max_length=args.max_length, max_eval=args.probe)
    result = fit(task, task.build_model(), cfg, hooks=[DevProbe(probe, args.probe_every)])
    minutes = (time.perf_counter() - start) / 60
    ours = result.metrics["accuracy"]
    paper = paper_dense(args.reference_dir)
    n_dev = len(task.examples("dev"))
    print(f"\nCommonsenseQA dev accuracy ({n_dev} questions), dense, {result.steps} steps x batch "
          f"{args.batch_size}, lr {args.lr:g}, {minutes:.1f} min on {args.threads} thread(s)")
    print(f"{'':32s}{'accuracy %':>12s}")
    print(f"{'ours: ' + args.model:32s}{ours:12.1f}")
    print(f"{'chance (1 of 5)':32s}{100 / 5:12.1f}")
    print(f"{'paper: RoBERTa-large dense':32s}{paper if paper is not None else float('nan'):12.1f}")
    return {"accuracy": ours, "chance": 20.0, "paper": paper or float("nan"), "minutes": minutes}


if __name__ == "__main__":
    run_main(main)
