"""CPU pilot for the translation section: a small random-init mBART on FLORES-200, BLEU per direction.

`python -m scripts.pilot.translation --dataset 2-to-2` fits the shared sentencepiece vocabulary and trains
`mbart-tiny` of the given size (no pretrained multilingual model can be had offline here) through
`smc_lib.train.fit` on the dataset's English-pivot directions (FLORES-200 dev), and logs after every epoch
the mean BLEU over the 20 evaluation directions (FLORES-200 devtest, the first --max-eval sentences of each,
greedy) and en→fr, and the same with chrF. The number reported is the last epoch's (no model selection).
"""
from __future__ import annotations

import argparse

import torch

from scripts.pilot.common import add_run_args, fit_logged, report
from smc_lib.errors import run_main
from smc_lib.tasks.translation.data import DATASETS
from smc_lib.tasks.translation.task import TranslationTask


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.pilot.translation", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="2-to-2", choices=DATASETS)
    p.add_argument("--epochs", type=float, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--ffn-dim", type=int, default=256)
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--max-train", type=int, default=None, help="pairs per training direction (default: all)")
    p.add_argument("--max-eval", type=int, default=50, help="test sentences per evaluation direction")
    add_run_args(p, "translation")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    task = TranslationTask(args.dataset, "mbart-tiny", args.data_dir, seed=args.seed, vocab_size=args.vocab_size,
                           d_model=args.d_model, layers=args.layers, ffn_dim=args.ffn_dim,
                           max_train=args.max_train, max_eval=args.max_eval)
    result, minutes = fit_logged(task, task.default_train_config(), args.out, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    return report({"dataset": args.dataset, "d_model": args.d_model, "layers": args.layers, "ffn_dim": args.ffn_dim,
                   "vocab_size": args.vocab_size, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                   "train_pairs": task.eval_size("train"), "per_epoch": [round(h["bleu"], 2) for h in result.history],
                   "bleu": round(result.metrics["bleu"], 2), "en-fr": round(result.metrics["bleu_en-fr"], 2),
                   "chrf_per_epoch": [round(h["chrf"], 2) for h in result.history],
                   "chrf": round(result.metrics["chrf"], 2), "chrf_en-fr": round(result.metrics["chrf_en-fr"], 2),
                   "minutes": round(minutes, 1)}, args.out)


if __name__ == "__main__":
    run_main(main)
