"""Tiny-size smoke runs of `smc bench prune`, `step` and `gts`: they run and print their JSON line.

No timing assertions: the full-size figures come from the commands themselves (see the report)."""
from __future__ import annotations

import json

import pytest

from benchmarks import gts, prune, step
from test_arithmetic_data import real_data_dir


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bench_prune_smoke(capsys):
    out = prune.main(["--layers", "2", "--hidden", "16", "--vocab", "3000", "--sparsity", "0.5"])
    line = _last_json(capsys)
    assert line == out and line["bench"] == "prune" and line["exact"] is True
    assert {"ours_s", "torch_s", "speedup", "extra_rss_gb", "plain_s", "plain_speedup", "fast_vs_plain"} <= set(line)
    assert line["n_params"] == 2 * (4 * 16 * 16 + 2 * 16 * 64) + 3000 * 16


def test_bench_step_smoke(capsys):
    out = step.main(["--model", "tiny", "--batch", "2", "--choices", "2", "--seq", "8", "--steps", "2",
                     "--warmup", "1", "--threads", "1"])
    line = _last_json(capsys)
    assert line == out and line["bench"] == "step" and line["pruned_exactly_zero"] is True
    assert {"dense_s", "masked_s", "ratio", "dense_dense_ratio", "plain_ratio", "enforce_fast_vs_plain"} <= set(line)
    assert line["plain_ratio"] > 0 and line["enforce_plain_cpu_s"] >= 0
    assert line["sparsity"] == 0.5


@pytest.mark.skipif(real_data_dir() is None, reason="needs the MAWPS data (data/ or ../shared/data)")
def test_bench_gts_smoke_with_product_floor(capsys):
    out = gts.main(["--data-dir", str(real_data_dir()), "--hidden", "16", "--embedding-dim", "8",
                    "--max-train", "8", "--max-eval", "4", "--compare-steps", "2", "--floor-batches", "2",
                    "--threads", "1"])
    line = _last_json(capsys)
    assert line == out and list(line)[:4] == ["bench", "epoch_s", "eval_s", "dev_acc"]
    assert line["steps"] == 2 and line["floor_epoch_s"] >= 0 and line["speedup"] > 0
    assert line["plain_step_s"] > 0 and line["fast_vs_plain"] > 0 and line["plain_speedup"] > 0
    assert {"floor_gru_gemm_step_s", "floor_recurrence_step_s", "floor_adam_step_s"} <= set(line)
