"""The dense pilots behind docs/PILOT.md (`python -m scripts.pilot.SECTION`) run and log what they claim."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_arithmetic_data import real_data_dir


@pytest.mark.skipif(real_data_dir() is None, reason="needs the data (data/ or ../shared/data)")
def test_protein_pilot_logs_each_epoch_and_the_baselines(tmp_path: Path):
    from scripts.pilot import protein

    row = protein.main(["--dataset", "hp-s2c2", "--epochs", "2", "--layers", "1", "--embed-dim", "16",
                        "--heads", "2", "--max-length", "16", "--data-dir", str(real_data_dir()), "--out", str(tmp_path)])
    epochs = [json.loads(line) for line in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2] and row["per_epoch"] == [round(e["accuracy"], 2) for e in epochs]
    assert row["ours"] == row["per_epoch"][-1]                   # the last epoch, no selection on the test split
    assert row["majority"] == pytest.approx(50.76, abs=0.01) and row["composition_logreg"] > row["majority"]
    assert json.loads((tmp_path / "results.jsonl").read_text().splitlines()[-1]) == row


@pytest.mark.skipif(real_data_dir() is None, reason="needs the data (data/ or ../shared/data)")
def test_arithmetic_pilot_subset_is_a_seeded_shuffle_not_the_files_head():
    from scripts.pilot.arithmetic import shuffled_subset
    from smc_lib.tasks.arithmetic.task import ArithmeticTask

    def subset(seed):
        task = ArithmeticTask("svamp", data_dir=real_data_dir(), embedder="random")
        shuffled_subset(task, 100, seed)
        return [p.words for p in task.problems("train")]
    head = [p.words for p in ArithmeticTask("svamp", data_dir=real_data_dir(), max_train=100).problems("train")]
    assert len(subset(0)) == 100 and subset(0) == subset(0) and subset(0) != subset(1) and subset(0) != head
