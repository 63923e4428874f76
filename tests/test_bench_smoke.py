"""Tiny-size smoke runs of `smc bench prune` and `smc bench step`: they run and print their JSON line.

No timing assertions: the full-size figures come from the commands themselves (see the report)."""
from __future__ import annotations

import json

from smc_lib.bench import prune, step


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bench_prune_smoke(capsys):
    out = prune.main(["--layers", "2", "--hidden", "16", "--vocab", "3000", "--sparsity", "0.5"])
    line = _last_json(capsys)
    assert line == out and line["bench"] == "prune" and line["exact"] is True
    assert {"ours_s", "torch_s", "speedup", "extra_rss_gb"} <= set(line)
    assert line["n_params"] == 2 * (4 * 16 * 16 + 2 * 16 * 64) + 3000 * 16


def test_bench_step_smoke(capsys):
    out = step.main(["--model", "tiny", "--batch", "2", "--choices", "2", "--seq", "8", "--steps", "2",
                     "--warmup", "1", "--threads", "1"])
    line = _last_json(capsys)
    assert line == out and line["bench"] == "step" and line["pruned_exactly_zero"] is True
    assert {"dense_s", "masked_s", "ratio", "dense_dense_ratio"} <= set(line)
    assert line["sparsity"] == 0.5
