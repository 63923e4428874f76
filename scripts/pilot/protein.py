"""CPU pilot for the protein section: a small ESM-2 trained from scratch on HotProtein, beside its baselines.

`python -m scripts.pilot.protein --dataset hp-s2c2` trains a randomly initialised ESM-2 of the given size
(no protein weights can be had offline here) through `smc_lib.train.fit`, logs test accuracy after every
epoch, and prints it beside the floors of the science issue: the test split's majority class + 10 points,
and logistic regression on amino-acid composition (`baselines.composition_logreg`). The number reported is the last
epoch's (the test split is the only evaluation split held; no model selection). With `--pretrain N` the
backbone first trains N steps of masked-language modelling (15 % of residues masked, as ESM) on ThermoProt's
training sequences (labels unused), then fine-tunes as above: does a little pre-training buy signal?
"""
from __future__ import annotations

import argparse
import random
import time

import torch
import torch.nn.functional as F

from scripts.pilot.common import add_run_args, fit_logged, report
from smc_lib.errors import run_main
from smc_lib.tasks.protein import baselines
from smc_lib.tasks.protein.data import DATASETS, crop, load_split
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
    p.add_argument("--pretrain", type=int, default=0, help="masked-LM steps on ThermoProt's training sequences first")
    p.add_argument("--pretrain-batch", type=int, default=16)
    p.add_argument("--pretrain-lr", type=float, default=1e-3)
    add_run_args(p, "protein")
    return p.parse_args(argv)


def mlm_pretrain(backbone: torch.nn.Module, task: ProteinTask, args: argparse.Namespace) -> dict:
    """`args.pretrain` AdamW steps of masked-language modelling on ThermoProt's training split, in place. The
    classifier replaced ESM's LM head by an identity, so a fresh linear head over the alphabet is trained with
    it and then dropped."""
    tok = task.tokenizer
    seqs = [p.sequence for p in load_split(args.data_dir, "hp-s", "train")]
    rng = random.Random(args.seed)
    head = torch.nn.Linear(backbone.embed_dim, tok.size)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=args.pretrain_lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.pretrain_lr, total_steps=args.pretrain)
    mask_id, start, losses = tok.index["<mask>"], time.perf_counter(), []
    backbone.train()
    for step in range(args.pretrain):
        ids = tok([crop(s, args.max_length, rng) for s in rng.sample(seqs, args.pretrain_batch)])
        residue = (ids != tok.pad) & (ids != tok.bos) & (ids != tok.eos)
        masked = residue & (torch.rand(ids.shape, generator=torch.Generator().manual_seed(step)) < 0.15)
        rep = backbone(ids.masked_fill(masked, mask_id), repr_layers=[backbone.num_layers])
        logits = head(rep["representations"][backbone.num_layers][masked])
        loss = F.cross_entropy(logits, ids[masked])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss))
        if (step + 1) % max(1, args.pretrain // 10) == 0:
            print(f"pretrain step {step + 1}/{args.pretrain} MLM loss {sum(losses[-50:]) / len(losses[-50:]):.3f}",
                  flush=True)
    return {"pretrain_loss": round(sum(losses[-50:]) / len(losses[-50:]), 3),
            "pretrain_minutes": round((time.perf_counter() - start) / 60, 1)}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    task = ProteinTask(args.dataset, "esm2-tiny", args.data_dir, seed=args.seed, max_length=args.max_length,
                       layers=args.layers, embed_dim=args.embed_dim, heads=args.heads)
    model, pre = task.build_model(), {}
    if args.pretrain:
        pre = mlm_pretrain(model.backbone, task, args)
    result, minutes = fit_logged(task, task.default_train_config(), args.out, model=model, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    train, test = task.examples("train"), task.examples("test")
    return report({"dataset": args.dataset, "layers": args.layers, "embed_dim": args.embed_dim,
                   "max_length": args.max_length, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                   "per_epoch": [round(h["accuracy"], 2) for h in result.history],
                   "ours": round(result.metrics["accuracy"], 2),
                   "majority": round(baselines.majority(train, test), 2),
                   "composition_logreg": round(baselines.composition_logreg(train, test), 2),
                   "minutes": round(minutes, 1), "pretrain": args.pretrain, **pre}, args.out)


if __name__ == "__main__":
    run_main(main)
