"""`smc bench prune`: global magnitude pruning of a RoBERTa-large-shaped model, ours vs torch.nn.utils.prune.

The model has random fp32 weights in RoBERTa-large's shapes (24 layers of 4 x 1024^2 attention + 2 x 1024*4096
FFN matrices, a 50265 x 1024 embedding: 353.5 M weights), all in scope, pruned globally to 50 % by |w| as the
OMP baselines of Liu, Chen et al. (ICLR 2023) do. Each side runs in its own subprocess (same threads), so the
baseline's memory cannot pollute ours: a background thread samples the resident set (/proc/self/statm) and
`extra_rss_gb` is its peak growth during pruning (our masks, 1 byte per weight, included). A third subprocess
runs ours on the plain-torch paths (`runtime.plain_paths`: torch's mask zeroing): `plain_s`, `fast_vs_plain`.
Ends with one JSON line: {"bench": "prune", "ours_s", "torch_s", "speedup", "extra_rss_gb", "plain_s", ...}.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune

from smc_lib.errors import run_main
from smc_lib.masks import MaskSet
from smc_lib.runtime import plain_paths, torch_threads
from smc_lib.scope import prunable


class _Block(nn.Module):
    def __init__(self, h: int):
        super().__init__()
        for name in ("query", "key", "value", "out"):
            setattr(self, name, nn.utils.skip_init(nn.Linear, h, h, bias=False))
        self.fc1 = nn.utils.skip_init(nn.Linear, h, 4 * h, bias=False)
        self.fc2 = nn.utils.skip_init(nn.Linear, 4 * h, h, bias=False)


def build_model(layers: int, hidden: int, vocab: int, seed: int = 0) -> nn.Module:
    """RoBERTa-large-shaped weight matrices (no biases or norms: they are never pruned anyway)."""
    model = nn.Module()
    model.embeddings = nn.utils.skip_init(nn.Embedding, vocab, hidden)
    model.layer = nn.ModuleList(_Block(hidden) for _ in range(layers))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02, generator=g)
    return model


def prune_ours(model: nn.Module, sparsity: float) -> MaskSet:
    params = prunable(model, "all")
    masks = MaskSet.from_scores(params, sparsity, transform=torch.abs)
    masks.apply(params)
    return masks


def prune_torch(model: nn.Module, sparsity: float) -> list:
    targets = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Linear, nn.Embedding))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
    return targets


def count_pruned(model: nn.Module) -> int:
    """Zero weights after pruning (either implementation), counted outside the timed region."""
    return sum(int((m.weight == 0).sum()) for m in model.modules() if isinstance(m, (nn.Linear, nn.Embedding)))


class RssSampler(threading.Thread):
    """Peak resident-set growth over a baseline, sampled every `period` seconds from /proc/self/statm."""

    def __init__(self, period: float = 0.002):
        super().__init__(daemon=True)
        self.period, self.stop_flag = period, threading.Event()
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.peak = self.rss()

    def rss(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self.page
        except OSError:                                    # not Linux: peak RSS since start (coarser)
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def run(self) -> None:
        while not self.stop_flag.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.period)

    def stop(self) -> float:
        self.stop_flag.set()
        self.join()
        self.peak = max(self.peak, self.rss())
        return (self.peak - self.base) / 1e9


def run_side(side: str, args: argparse.Namespace) -> dict:
    """Build the model, then time and memory-profile one pruning implementation."""
    model = build_model(args.layers, args.hidden, args.vocab)
    n = sum(p.numel() for p in model.parameters())
    fn = prune_torch if side == "torch" else prune_ours
    sampler = RssSampler()
    sampler.start()
    with plain_paths() if side == "plain" else contextlib.nullcontext():   # plain: torch's mask zeroing
        t0, c0 = time.perf_counter(), time.process_time()
        fn(model, args.sparsity)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    extra = sampler.stop()
    pruned = count_pruned(model)
    return {"side": side, "seconds": seconds, "cpu_s": cpu, "extra_rss_gb": extra, "n_params": n, "pruned": pruned,
            "expected_pruned": round(args.sparsity * n)}


def _r(x: float, digits: int = 4) -> float | None:
    """Rounded figure for the JSON line; None (null) where a side failed."""
    return None if math.isnan(x) else round(x, digits)


def _n_params(args: argparse.Namespace) -> int:
    return args.layers * 12 * args.hidden ** 2 + args.vocab * args.hidden


def _warn_if_short_of_memory(n: int) -> None:
    try:
        with open("/proc/meminfo") as f:
            avail = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable"))
    except (OSError, StopIteration):
        return
    if avail < 52 * n:
        print(f"note: {avail / 1e9:.1f} GB available; the torch baseline needs about {52 * n / 1e9:.1f} GB",
              file=sys.stderr)


def _volunteer_for_oom_killer() -> None:
    """The torch baseline needs ~47 bytes per weight (16 GB at full size): if memory runs out on a shared
    machine, let the kernel kill this process rather than someone else's."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def _child(side: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.prune", "--side", side, "--layers", str(args.layers),
           "--hidden", str(args.hidden), "--vocab", str(args.vocab), "--sparsity", str(args.sparsity),
           "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if out.returncode != 0:
        why = "killed (out of memory?)" if out.returncode == -9 else f"exit code {out.returncode}"
        print(f"bench prune --side {side} failed: {why}\n{out.stderr[-2000:]}", file=sys.stderr)
        return {"side": side, "seconds": math.nan, "cpu_s": math.nan, "extra_rss_gb": math.nan,
                "n_params": 0, "pruned": 0, "expected_pruned": 0, "failed": why}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="smc bench prune", description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=24, help="transformer layers (RoBERTa-large: 24)")
    ap.add_argument("--hidden", type=int, default=1024, help="hidden size; the FFN is 4x (RoBERTa-large: 1024)")
    ap.add_argument("--vocab", type=int, default=50265, help="embedding rows (RoBERTa: 50265)")
    ap.add_argument("--sparsity", type=float, default=0.5, help="global fraction of weights pruned")
    ap.add_argument("--threads", type=int, default=1, help="torch/OMP threads for both sides (default 1: the "
                    "shared machine's cores are contended; more threads made both sides noisier here)")
    ap.add_argument("--side", choices=["ours", "plain", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict:
    if args.side:
        if args.side == "torch":
            _volunteer_for_oom_killer()
        print(json.dumps(run_side(args.side, args)))
        return {}
    _warn_if_short_of_memory(_n_params(args))
    ours, plain, base = _child("ours", args), _child("plain", args), _child("torch", args)
    for r in (ours, plain, base):
        print(f"{r['side']:6s} {r['seconds']:8.3f} s wall {r['cpu_s']:8.3f} s CPU  +{r['extra_rss_gb']:.3f} GB RSS  "
              f"pruned {r['pruned']:,} of {r['n_params']:,} (expected {r['expected_pruned']:,})")
    result = {"bench": "prune", "ours_s": _r(ours["seconds"]), "torch_s": _r(base["seconds"]),
              "speedup": _r(base["seconds"] / ours["seconds"], 2), "extra_rss_gb": _r(ours["extra_rss_gb"]),
              "torch_extra_rss_gb": _r(base["extra_rss_gb"]), "n_params": ours["n_params"],
              "exact": ours["pruned"] == ours["expected_pruned"], "threads": args.threads,
              "cpu_speedup": _r(base["cpu_s"] / ours["cpu_s"], 2), "plain_s": _r(plain["seconds"]),
              "plain_speedup": _r(base["seconds"] / plain["seconds"], 2),
              "fast_vs_plain": _r(plain["seconds"] / ours["seconds"], 2)}
    if "failed" in base:
        result["torch_failed"] = base["failed"]
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    run_main(main)
