"""Sweeps: grid expansion, resume after `kill -9`, and the Ray executor giving the local executor's table."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from smc_lib import sweep
from smc_lib.errors import SMCError
from smc_lib.results import COLUMNS

PROFILE = {
    "profile": "toytest", "device": "cpu", "seeds": [0], "sparsities": [0.2, 0.5],
    "toy": {"datasets": ["toy"], "models": ["toy"], "methods": ["dense", "omp_after", "omp_before", "gmp"],
            "task": {"n_train": 256, "n_dev": 64, "n_test": 64}, "train": {"steps": 12, "eval_every": 6}},
}  # 1 dense + 3 methods x 2 sparsities = 7 runs


def write_profile(path: Path, **section) -> Path:
    prof = {**PROFILE, "toy": {**PROFILE["toy"], **section}}
    path.write_text(yaml.safe_dump(prof))
    return path


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["wall_s", "git_revision"]).reset_index(drop=True)   # provenance, not results


def test_grid_has_dense_once_per_dataset_model_seed_fold(tmp_path: Path):
    prof = write_profile(tmp_path / "p.yaml", folds=[0, 1])
    runs = sweep.grid(str(prof), "toy", seeds=[0, 1])
    dense = [r for r in runs if r.method == "dense"]
    assert len(dense) == 4 and {(r.seed, r.fold) for r in dense} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert len(runs) == 4 * (1 + 3 * 2)
    assert runs[:4] == dense  # dense first: every `after` method starts from it
    assert {r.sparsity for r in runs if r.method != "dense"} == {0.2, 0.5}
    assert len({r.key() for r in runs}) == len(runs)


def test_grid_overrides_and_per_dataset(tmp_path: Path):
    prof = write_profile(tmp_path / "p.yaml", per_dataset={"toy": {"folds": [3], "train": {"steps": 5}}})
    runs = sweep.grid(str(prof), "toy", methods=["gmp"], sparsities=[0.36])
    assert [(r.method, r.sparsity, r.fold) for r in runs] == [("dense", 0.0, 3), ("gmp", 0.36, 3)]
    assert all(r.train == {"steps": 5, "eval_every": 6} for r in runs)
    with pytest.raises(SMCError, match="unknown sweep option"):
        sweep.grid(str(prof), "toy", method=["gmp"])


def test_local_sweep_table(tmp_path: Path):
    table = sweep.sweep("toy", profile=str(write_profile(tmp_path / "p.yaml")), store=tmp_path / "s", progress=False)
    assert list(table.columns) == COLUMNS
    assert len(table) == 7 * 2  # accuracy and loss per run
    assert set(table["method"]) == {"dense", "omp_after", "omp_before", "gmp"}
    acc = table[table["metric"] == "accuracy"]
    assert ((acc["achieved_sparsity"] - acc["sparsity"]).abs() < 1e-3).all()


SWEEP_SCRIPT = textwrap.dedent("""
    import sys, time
    import smc_lib.runs as runs
    from smc_lib import sweep
    profile, store, log, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    real = runs._train
    def counted(cfg, store_, data_dir):
        with open(log, "a") as f:
            f.write(cfg.key() + "\\n")
        time.sleep(delay)  # slow enough for the test to kill it between runs
        return real(cfg, store_, data_dir)
    runs._train = counted
    sweep.sweep("toy", profile=profile, store=store, progress=False).to_csv(store + "/table.csv", index=False)
""")


def start_sweep(profile: Path, store: Path, log: Path, delay: float) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", SWEEP_SCRIPT, str(profile), str(store), str(log), str(delay)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finished(store: Path) -> list[Path]:
    return sorted((store / "toy").glob("*.json")) if (store / "toy").exists() else []


def test_killed_sweep_resumes_without_recomputing(tmp_path: Path):
    prof, store = write_profile(tmp_path / "p.yaml"), tmp_path / "store"
    store.mkdir()
    log1, log2 = tmp_path / "first.log", tmp_path / "second.log"
    proc = start_sweep(prof, store, log1, delay=1.0)
    deadline = time.time() + 240
    while len(finished(store)) < 2:
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "the sweep did not finish two runs in time"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.stem for p in finished(store)}
    assert 2 <= len(done_before) < 7

    rerun = start_sweep(prof, store, log2, delay=0.0)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out.decode()
    retrained = log2.read_text().split()
    assert not set(retrained) & done_before, "a finished run was trained again"
    assert len(retrained) == 7 - len(done_before) and len(set(retrained)) == len(retrained)

    resumed = pd.read_csv(store / "table.csv")
    fresh = sweep.sweep("toy", profile=str(prof), store=tmp_path / "fresh", progress=False)
    fresh = pd.read_csv(pd.io.common.StringIO(fresh.to_csv(index=False)))  # same dtypes as the CSV
    pd.testing.assert_frame_equal(comparable(resumed), comparable(fresh))


def test_ray_gives_the_local_table(tmp_path: Path):
    pytest.importorskip("ray")
    prof = write_profile(tmp_path / "p.yaml", methods=["dense", "omp_after", "gmp"], sparsities=[0.5])
    local = sweep.sweep("toy", profile=str(prof), store=tmp_path / "local", progress=False)
    started = time.time()
    on_ray = sweep.sweep("toy", profile=str(prof), store=tmp_path / "ray", executor="ray", progress=False)
    print(f"ray sweep: {time.time() - started:.1f}s")
    pd.testing.assert_frame_equal(comparable(local), comparable(on_ray))
    assert len(list((tmp_path / "ray" / "toy").glob("*.json"))) == 3


def test_roadmap_gives_every_step_at_every_level_in_one_scope():
    from smc_lib.config import load_profile

    prof = load_profile("smoke")
    configs, label, store = sweep.roadmap(prof)
    levels = prof["commonsense"]["notebook"]["roadmap"]["sparsities"]
    assert len(configs) == len(sweep.ROADMAP) * len(levels) and len(label) == len(configs)   # distinct keys
    assert {c.scope for c in configs} == {"encoder"} and store.records.name == "obert_roadmap"
    for c in configs:
        method, kd = sweep.ROADMAP[label[c.key()]]
        assert c.method == method and ("distill" in c.train) == kd and c.dataset == "csqa"
    assert sweep.roadmap({**prof, "commonsense": {**prof["commonsense"], "notebook": {}}})[0] == []
