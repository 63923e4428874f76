"""`smc bench gts`: one training epoch of GTS on MAWPS fold 0, then beam-search evaluation of dev.

The setting of the issue's speed check: a randomly initialised word embedding (no pretrained embedder),
batch 4, hidden 512, Adam at LR 1e-3, constant LR. Before the epoch, the reference way of computing the
same loss (math_seq2tree's packed `nn.GRU` + position-by-position tree decoding with Python stacks, see
`benchmarks/gts_reference.py`) and ours are timed on the same batches, interleaved, in this
process, on two copies of the same model: the ratio holds even when the machine is shared. With
`--floor-batches N`, the products any implementation must compute (`product_floor`) are timed at the
epoch's shapes: a lower bound on the epoch with this machine's BLAS. The last line is JSON:
{"bench": "gts", "epoch_s", "eval_s", "dev_acc", "ours_step_s", "reference_step_s", "speedup", "plain_step_s",
"fast_vs_plain", "floor_*"}.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time

import torch

from benchmarks.gts_reference import packed_gru_like, reference_loss
from smc_lib.errors import run_main
from smc_lib.runtime import plain_paths, torch_threads
from smc_lib.tasks.arithmetic.rnn import _small_batch_mm
from smc_lib.tasks.arithmetic.task import ArithmeticTask
from smc_lib.train import build_optimizer


def _step(loss_fn, model, optimizer, batch) -> float:
    start = time.perf_counter()
    loss = loss_fn(batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def compare_steps(task: ArithmeticTask, model, cfg, n: int) -> tuple[float, float, float]:
    """Median seconds per training step over the same `n` batches (interleaved): ours, the reference, and
    ours on the plain-torch paths (`runtime.plain_paths`: autograd GRU, no LinearTape)."""
    ours, ref, plain = copy.deepcopy(model), copy.deepcopy(model), copy.deepcopy(model)
    gru = packed_gru_like(ref)
    ref.encoder.gru = None  # the reference model trains the packed nn.GRU instead
    ref.ref_gru = gru
    opt_ours, opt_ref, opt_plain = (build_optimizer(m, cfg) for m in (ours, ref, plain))
    t_ours, t_ref, t_plain = [], [], []
    for i, batch in enumerate(task.batches("train", cfg.batch_size, shuffle=True, seed=1)):
        if i >= n:
            break
        t_ours.append(_step(ours, ours, opt_ours, batch))
        t_ref.append(_step(lambda b: reference_loss(ref, gru, b), ref, opt_ref, batch))
        with plain_paths():
            t_plain.append(_step(plain, plain, opt_plain, batch))
    return tuple(float(torch.tensor(t).median()) for t in (t_ours, t_ref, t_plain))


def _median_s(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def product_floor(task: ArithmeticTask, model, cfg, n: int) -> dict:
    """A lower bound on one epoch, from the products no implementation of this model can skip, timed here at
    the shapes of `n` real batches: per GRU layer and direction the input projection and its three gradient
    products over the batch's real (unpadded) rows, the 2T skinny recurrence products W_hh·h (forward) and
    W_hhᵀ·dh (backward), and one Adam step over every parameter. The tree decoder, all elementwise work
    and Python are left out, so the real epoch must take longer."""
    gemm_s, recurrence_s, batches = 0.0, 0.0, 0
    for batch in task.batches("train", cfg.batch_size, shuffle=True, seed=cfg.seed):
        if batches >= n:
            break
        rows, steps, width = int(batch["lengths"].sum()), int(batch["lengths"].max()), len(batch["lengths"])
        for layer in model.encoder.gru.layers:
            for direction in layer:
                w_ih, w_hh = direction.weight_ih.detach(), direction.weight_hh.detach()
                x, g = torch.randn(rows, w_ih.size(1)), torch.randn(rows, w_ih.size(0))
                h, d_gates, w_hh_t = torch.randn(width, w_hh.size(1)), g[:width], w_hh.t().contiguous()
                gemm_s += _median_s(lambda: (x @ w_ih.t(), g @ w_ih, g.t() @ x, g.t() @ x[:, : w_hh.size(1)]))
                recurrence_s += _median_s(lambda: [(_small_batch_mm(w_hh, h), _small_batch_mm(w_hh_t, d_gates))
                                                   for _ in range(steps)], repeats=1)
        batches += 1
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer = build_optimizer(model, cfg)
    adam_s = _median_s(optimizer.step)
    steps = task.num_batches("train", cfg.batch_size)
    per_step = (gemm_s + recurrence_s) / batches + adam_s
    return {"floor_gru_gemm_step_s": round(gemm_s / batches, 4),
            "floor_recurrence_step_s": round(recurrence_s / batches, 4), "floor_adam_step_s": round(adam_s, 4),
            "floor_epoch_s": round(steps * per_step, 1)}


def train_epoch(task: ArithmeticTask, model, cfg) -> float:
    optimizer = build_optimizer(model, cfg)
    model.train()
    start = time.perf_counter()
    for batch in task.batches("train", cfg.batch_size, shuffle=True, seed=cfg.seed):
        _step(model, model, optimizer, batch)
    return time.perf_counter() - start


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="smc bench gts", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="data")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--embedding-dim", type=int, default=768, help="size of the random word embedding")
    p.add_argument("--compare-steps", type=int, default=30, help="batches timed for ours vs reference (0: skip)")
    p.add_argument("--floor-batches", type=int, default=0,
                   help="also time the unavoidable products at the shapes of N batches: a lower bound on the epoch")
    p.add_argument("--max-train", type=int, default=None, help="train on the first N problems only (smoke runs)")
    p.add_argument("--max-eval", type=int, default=None)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with torch_threads(args.threads):
        out = run(args)
    print(json.dumps({k: out[k] for k in ["bench", "epoch_s", "eval_s", "dev_acc"] + [
        k for k in out if k not in ("bench", "epoch_s", "eval_s", "dev_acc")]}))
    return out


def run(args: argparse.Namespace) -> dict:
    task = ArithmeticTask("mawps", "gts", args.data_dir, fold=args.fold, seed=args.seed, embedder="random",
                          hidden=args.hidden, embedding_dim=args.embedding_dim, max_train=args.max_train,
                          max_eval=args.max_eval)
    cfg = dataclasses.replace(task.default_train_config(), batch_size=args.batch_size, seed=args.seed)
    model = task.build_model()
    out: dict = {"bench": "gts"}
    if args.compare_steps:
        ours, ref, plain = compare_steps(task, model, cfg, args.compare_steps)
        out.update(ours_step_s=round(ours, 4), reference_step_s=round(ref, 4), speedup=round(ref / ours, 2),
                   plain_step_s=round(plain, 4), fast_vs_plain=round(plain / ours, 2),
                   plain_speedup=round(ref / plain, 2))
        print(f"per training step (median of {args.compare_steps}): ours {ours:.3f} s, reference {ref:.3f} s "
              f"-> {ref / ours:.2f}x; ours on the plain paths {plain:.3f} s -> {ref / plain:.2f}x", flush=True)
    if args.floor_batches:
        out.update(product_floor(task, copy.deepcopy(model), cfg, args.floor_batches))
        print(f"products alone (GRU products + Adam, no decoder, no elementwise work): "
              f"{out['floor_epoch_s']} s per epoch", flush=True)
    out["epoch_s"] = round(train_epoch(task, model, cfg), 1)
    start = time.perf_counter()
    out["dev_acc"] = round(task.evaluate(model, "dev")["accuracy"], 2)
    out["eval_s"] = round(time.perf_counter() - start, 1)
    out.update(steps=task.num_batches("train", cfg.batch_size), threads=torch.get_num_threads())
    return out


if __name__ == "__main__":
    run_main(main)
