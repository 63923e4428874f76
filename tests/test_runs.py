"""Runs: content-hash identity, the result cache, the shared dense checkpoint, provenance."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from smc_lib import runs
from smc_lib.errors import SMCError
from smc_lib.runs import RunConfig, execute, load_result, result_path, run_dir

TOY_TASK = {"n_train": 256, "n_dev": 64, "n_test": 64}
TOY_TRAIN = {"steps": 12, "eval_every": 6}


def toy(method: str = "omp_after", sparsity: float = 0.5, **kw) -> RunConfig:
    return RunConfig(task="toy", dataset="toy", model="toy", method=method,
                     sparsity=0.0 if method == "dense" else sparsity, profile="test", device="cpu",
                     task_params=TOY_TASK, train=TOY_TRAIN, **kw)


def test_key_is_a_content_hash():
    a, b = toy(), toy()
    assert a.key() == b.key() and len(a.key()) == 16
    assert dataclasses.replace(a, device="cuda").key() == a.key()  # where it runs is not what it is
    for change in ({"sparsity": 0.36}, {"seed": 1}, {"fold": 0}, {"profile": "paper"}, {"method": "snip"},
                   {"train": {**TOY_TRAIN, "lr": 0.01}}, {"task_params": {**TOY_TASK, "dim": 8}}):
        assert dataclasses.replace(a, **change).key() != a.key(), change


def test_rerun_is_served_from_the_store(tmp_path: Path, count_training):
    first = execute(toy("dense"), tmp_path)
    again = execute(toy("dense"), tmp_path)
    assert len(count_training) == 1
    assert not first.cached and again.cached
    assert again.metrics == first.metrics and again.key == first.key


def test_result_record(tmp_path: Path):
    res = execute(toy("omp_before", 0.5), tmp_path)
    stored = json.loads(result_path(toy("omp_before", 0.5), tmp_path).read_text())
    assert stored["key"] == res.key and stored["config"]["method"] == "omp_before"
    assert res.achieved_sparsity == pytest.approx(0.5, abs=1e-3)
    assert {"accuracy", "loss"} <= set(res.metrics) and res.primary_metric == "accuracy"
    assert res.layerwise and {"param", "layer", "kind", "numel", "sparsity"} <= set(res.layerwise[0])
    assert res.versions["torch"] and res.versions["python"]
    assert res.wall_s > 0 and res.steps == TOY_TRAIN["steps"]
    assert 0 < res.cpu_s < 10 * res.wall_s * res.threads       # CPU time of the training, all threads
    assert res.train_config["steps"] == TOY_TRAIN["steps"] and res.train_config["device"] == "cpu"
    assert res.git_revision is None or len(res.git_revision.split("+")[0]) == 40
    assert not run_dir(toy("omp_before", 0.5), tmp_path).exists()  # resume state is dropped when done


def test_core_seconds_prefers_cpu_time_and_bounds_older_records(tmp_path: Path):
    from smc_lib.sweep import core_seconds

    res = execute(toy("dense"), tmp_path)
    assert core_seconds(res) == res.cpu_s
    older = dataclasses.replace(res, cpu_s=None, wall_s=100.0, threads=2)   # a record from before `cpu_s`
    assert core_seconds(older) == 200.0


def test_custom_scope_prunes_only_what_it_names(tmp_path: Path):
    cfg = toy("omp_before", 0.5, scope="custom", scope_patterns={"include": [r"^fc1\."]})
    res = execute(cfg, tmp_path)
    assert [row["param"] for row in res.layerwise] == ["fc1.weight"]
    assert res.layerwise[0]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert cfg.key() != toy("omp_before", 0.5, scope="custom").key()


def test_after_methods_share_one_dense_run(tmp_path: Path, count_training):
    execute(toy("omp_after", 0.2), tmp_path)
    execute(toy("random_after", 0.5), tmp_path)
    trained = [c.method for c in count_training]
    assert trained.count("dense") == 1, trained
    assert (run_dir(toy("dense"), tmp_path) / "model.pt").exists()
    assert load_result(toy("dense"), tmp_path) is not None


def test_dense_model_is_the_fine_tuned_one(tmp_path: Path):
    import torch

    dense = execute(toy("dense"), tmp_path)
    model = runs.dense_model(toy("omp_after"), tmp_path, "data")
    from smc_lib.tasks import get_task

    task = get_task("toy")("toy", "toy", "data", seed=0, **TOY_TASK)
    assert task.evaluate(model)["accuracy"] == pytest.approx(dense.metrics["accuracy"])
    fresh = task.build_model()
    assert not torch.equal(fresh.fc1.weight, model.fc1.weight)


def test_corrupt_result_names_the_file(tmp_path: Path):
    path = result_path(toy("dense"), tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(SMCError, match=path.name):
        execute(toy("dense"), tmp_path)


def test_bad_configs_fail_before_training():
    with pytest.raises(SMCError, match=r"\[0, 1\)"):
        toy(sparsity=1.0)
    with pytest.raises(SMCError, match="dense"):
        RunConfig(task="toy", dataset="toy", model="toy", method="dense", sparsity=0.5)


def test_atomic_write_leaves_no_temporary(tmp_path: Path):
    runs.atomic_write(tmp_path / "a.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


class _Interrupt(Exception):
    pass


def _flaky_task():
    """The toy task, but its loss can be told to fail after N calls (a crash in the middle of `fit`)."""
    from smc_lib.tasks import TASKS, get_task, register_task

    if "toy_flaky" in TASKS:
        return get_task("toy_flaky")
    toy_cls = get_task("toy")

    @register_task("toy_flaky")
    class Flaky(toy_cls):
        name = "toy_flaky"
        calls, fail_after = 0, None

        def loss(self, model, batch):
            type(self).calls += 1
            if type(self).fail_after is not None and type(self).calls > type(self).fail_after:
                raise _Interrupt
            return super().loss(model, batch)

    return Flaky


def test_interrupted_run_continues_from_its_checkpoint(tmp_path: Path):
    flaky = _flaky_task()
    cfg = dataclasses.replace(toy("dense"), task="toy_flaky")
    flaky.calls, flaky.fail_after = 0, 9  # dies at step 10; fit checkpointed at step 6 (eval_every)
    with pytest.raises(_Interrupt):
        execute(cfg, tmp_path / "a")
    assert load_result(cfg, tmp_path / "a") is None and any(run_dir(cfg, tmp_path / "a").iterdir())

    flaky.calls, flaky.fail_after = 0, None
    resumed = execute(cfg, tmp_path / "a")
    assert flaky.calls == TOY_TRAIN["steps"] - 6, "the rerun should train only the steps after the checkpoint"
    flaky.calls = 0
    straight = execute(cfg, tmp_path / "b")
    assert flaky.calls == TOY_TRAIN["steps"]
    assert resumed.metrics == pytest.approx(straight.metrics)


def test_public_api_is_lazy_and_complete():
    import subprocess
    import sys

    code = ("import sys, smc_lib; assert 'torch' not in sys.modules, 'import smc_lib pulled in torch'; "
            "from smc_lib import prune, MaskSet, register_method, run, sweep; "
            "assert all(getattr(smc_lib, n) is not None for n in smc_lib.__all__); "
            "assert callable(sweep.sweep) and callable(run) and callable(prune)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
