"""A matrix of user mistakes and faults, each through the real CLI (in process): non-zero exit, no traceback,
one message naming the file / line / key / value, nothing trained, nothing left in the store."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import smc_lib
from smc_lib import runs
from smc_lib.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
TOY = {"profile": "bad", "device": "cpu", "seeds": [0], "sparsities": [0.5],
       "toy": {"datasets": ["toy"], "models": ["toy"], "methods": ["dense", "omp_before"],
               "task": {"n_train": 64, "n_dev": 16, "n_test": 16}, "train": {"steps": 2}}}


def profile(tmp: Path, **change) -> Path:
    prof = json.loads(json.dumps(TOY))
    for dotted, value in change.items():
        node, *path, last = [prof] + dotted.split("__")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp / "p.yaml"
    path.write_text(yaml.safe_dump(prof))
    return path


def _csv_with(tmp: Path, payload: bytes) -> Path:
    if not DATA.is_dir():
        pytest.skip("data/ not pulled (run `make data`)")
    dst = tmp / "data"
    shutil.copytree(DATA / "arithmetic", dst / "arithmetic")
    path = dst / "arithmetic/mawps/cv_mawps/fold0/train.csv"
    lines = path.read_bytes().split(b"\n")
    lines[5] = lines[5][:10] + payload + lines[5][10:]
    path.write_bytes(b"\n".join(lines))
    return dst


# (case id, argv builder(tmp) -> list[str], substrings the one-line message must contain)
CASES = [
    ("steps-not-a-number", lambda t: ["sweep", "toy", "--profile", str(profile(t, toy__train__steps="abc"))], ["steps", "abc"]),
    ("lr-negative", lambda t: ["sweep", "toy", "--profile", str(profile(t, toy__train__lr=-1))], ["lr", "-1"]),
    ("unknown-train-key", lambda t: ["sweep", "toy", "--profile", str(profile(t, toy__train__stepz=3))], ["stepz"]),
    ("unknown-method", lambda t: ["sweep", "toy", "--profile", str(profile(t)), "--method", "bogus"], ["bogus"]),
    ("unknown-dataset", lambda t: ["sweep", "toy", "--profile", str(profile(t)), "--dataset", "nope"], ["nope"]),
    ("unknown-section", lambda t: ["sweep", "protein2", "--profile", str(profile(t))], ["protein2"]),
    ("sparsity-1.5", lambda t: ["sweep", "toy", "--profile", str(profile(t)), "--sparsity", "1.5"], ["1.5"]),
    ("unknown-global-key", lambda t: ["sweep", "toy", "--profile", str(profile(t, devise="cpu"))], ["devise"]),
    ("bad-device", lambda t: ["sweep", "toy", "--profile", str(profile(t, device="tpu"))], ["tpu"]),
    ("threads-0", lambda t: ["sweep", "toy", "--profile", str(profile(t, threads=0))], ["threads"]),
    ("bad-executor", lambda t: ["sweep", "toy", "--profile", str(profile(t, executor="dask"))], ["dask"]),
    ("unknown-ray-key", lambda t: ["sweep", "toy", "--profile", str(profile(t, ray={"gpus": 1}))], ["gpus"]),
    ("unknown-profile", lambda t: ["sweep", "toy", "--profile", "nosuch"], ["nosuch"]),
    ("malformed-yaml", lambda t: ["sweep", "toy", "--profile", str(_write(t / "p.yaml", "toy: [unclosed\n"))],
     ["p.yaml", "line"]),
    ("unknown-scope", lambda t: ["sweep", "toy", "--profile", str(profile(t, toy__scope="decoder"))], ["decoder"]),
    ("unknown-method-option", lambda t: ["sweep", "toy", "--profile",
                                         str(profile(t, toy__method_options={"omp_before": {"alpha": 1}}))], ["alpha"]),
    ("unknown-task-param", lambda t: ["sweep", "toy", "--profile", str(profile(t, toy__task__widht=3))], ["widht"]),
    ("out-not-writable", lambda t: ["sweep", "toy", "--profile", str(profile(t)), "--out",
                                    str(_readonly(t) / "x.csv")], ["x.csv"]),
    ("out-under-a-file", lambda t: ["sweep", "toy", "--profile", str(profile(t)), "--out",
                                    str(_write(t / "afile", "x") / "x.csv")], ["afile", "not a writable folder"]),
    ("ray-gpu-on-a-cpu-host", lambda t: ["sweep", "toy", "--profile", str(profile(t, executor="ray",
                                         ray={"num_gpus_per_run": 1}))], ["num_gpus_per_run", "0"]),
    ("ray-too-many-cpus", lambda t: ["sweep", "toy", "--profile", str(profile(t, executor="ray",
                                     ray={"num_cpus": 2, "num_cpus_per_run": 8}))], ["num_cpus_per_run", "8"]),
    ("store-not-a-directory", lambda t: ["run", "--task", "toy", "--dataset", "toy", "--method", "dense",
                                         "--profile", str(profile(t)), "--store", str(_write(t / "f", "x"))], ["f"]),
    ("store-under-proc", lambda t: ["run", "--task", "toy", "--dataset", "toy", "--method", "dense",
                                    "--profile", str(profile(t)), "--store", "/proc/smc-store"], ["/proc/smc-store"]),
    ("nul-byte-in-csv", lambda t: ["data", "check", "--data-dir", str(_csv_with(t, b"\x00"))], ["train.csv:6", "NUL"]),
    ("bad-utf8-in-csv", lambda t: ["data", "check", "--data-dir", str(_csv_with(t, b"\xff\xfe"))],
     ["train.csv:6", "UTF-8"]),
    ("numbers-not-numbers", lambda t: ["data", "check", "--data-dir",
                                       str(_edited(t, "arithmetic/mawps/cv_mawps/fold0/dev.csv", _numbers_abc))],
     ["dev.csv", "line 2", "abc"]),
    ("answer-key-out-of-range", lambda t: ["data", "check", "--data-dir",
                                           str(_edited(t, "commonsense/csqa/dev_rand_split.jsonl", _answer_key_z))],
     ["dev_rand_split.jsonl:1", "Z"]),
    ("a-file-of-the-data-is-missing", lambda t: ["data", "check", "--data-dir",
                                                 str(_edited(t, "commonsense/csqa/dev_rand_split.jsonl", str))],
     ["SVAMP.json", "dvc pull"]),
    ("missing-data-dir", lambda t: ["data", "check", "--data-dir", str(t / "nodata")], ["nodata"]),
    ("report-no-notebooks", lambda t: ["report", "--profile", "smoke", "--notebooks", str(t / "none"),
                                       "--out", str(t / "r")], ["none"]),
    ("verify-unknown-key", lambda t: ["verify", "deadbeef", "--records", str(_records(t))], ["deadbeef"]),
    ("verify-no-records", lambda t: ["verify", "--records", str(t / "nothing")], ["nothing"]),
    ("record-wrong-type", lambda t: ["verify", "--records", str(_records(t, metrics="abc"))], ["metrics"]),
    ("sparsity-for-dense", lambda t: ["run", "--task", "toy", "--dataset", "toy", "--method", "dense", "--sparsity",
                                      "0.5", "--profile", str(profile(t))], ["dense"]),
]


def _edited(tmp: Path, rel: str, edit) -> Path:
    """A copy of one dataset folder with `edit(text) -> text` applied to one file."""
    if not DATA.is_dir():
        pytest.skip("data/ not pulled (run `make data`)")
    top = rel.split("/")[0]
    shutil.copytree(DATA / top, tmp / "data" / top)
    path = tmp / "data" / rel
    path.write_text(edit(path.read_text(encoding="utf-8-sig")), encoding="utf-8")
    return tmp / "data"


def _numbers_abc(text: str) -> str:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    rows[1][rows[0].index("Numbers")] = "abc"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _answer_key_z(text: str) -> str:
    lines = text.splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "answerKey": "Z"})
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _readonly(tmp: Path) -> Path:
    d = tmp / "ro"
    d.mkdir()
    d.chmod(0o555)
    return d


def _records(tmp: Path, **bad) -> Path:
    """A real toy record (trained before the test's guard is set up), with `bad` fields written over it."""
    from smc_lib.runs import RunConfig, Store, execute, result_path

    store = Store(records=tmp / "records", artifacts=tmp / "artifacts")
    cfg = RunConfig(task="toy", dataset="toy", model="toy", method="dense", sparsity=0.0, device="cpu",
                    task_params=TOY["toy"]["task"], train={"steps": 2})
    _REAL_TRAIN(cfg, store)
    path = result_path(cfg, store)
    path.write_text(json.dumps({**json.loads(path.read_text()), **bad}))
    shutil.rmtree(store.artifacts)
    return store.records


def _REAL_TRAIN(cfg, store):
    from smc_lib.runs import atomic_write, data_path, result_path

    atomic_write(result_path(cfg, store), _ORIGINAL_TRAIN(cfg, store, data_path(cfg)).to_json())


_ORIGINAL_TRAIN = runs._train


@pytest.mark.parametrize("case,argv,expect", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_and_trains_nothing(case, argv, expect, tmp_path, monkeypatch):
    import os

    if case == "out-not-writable" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    trained = []
    monkeypatch.setattr(runs, "_train", lambda *a, **k: trained.append(a) or (_ for _ in ()).throw(AssertionError))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, argv(tmp_path))
    err = result.stderr if hasattr(result, "stderr") else result.output
    assert result.exit_code != 0, result.output
    assert "Traceback" not in (result.output + err) and not isinstance(result.exception, AssertionError), result.output
    lines = [ln for ln in (result.output + err).splitlines() if ln.startswith("error:")]
    assert lines and any(all(needle in ln for needle in expect) for ln in lines), result.output
    assert not trained
    assert not list(tmp_path.rglob("*.lock"))


def test_a_truncated_dense_model_is_named_before_an_after_method_trains(tmp_path, monkeypatch):
    from smc_lib.runs import RunConfig, Store, execute, run_dir

    store = Store(records=tmp_path / "r", artifacts=tmp_path / "a")
    cfg = RunConfig(task="toy", dataset="toy", model="toy", method="dense", sparsity=0.0, device="cpu",
                    task_params=TOY["toy"]["task"], train={"steps": 2})
    execute(cfg, store)
    weights = run_dir(cfg, store) / "model.pt"
    weights.write_bytes(weights.read_bytes()[:100])                     # a truncated artifact
    after = RunConfig(**{**cfg.as_dict(), "method": "omp_after", "sparsity": 0.5})
    with pytest.raises(runs.SMCError, match=f"rm {weights}"):
        execute(after, store)


def test_a_ray_sweep_asking_for_a_gpu_on_a_cpu_host_fails_within_seconds(tmp_path, monkeypatch):
    """It used to wait forever at 0 / N: the check runs before the local cluster starts."""
    import time

    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **k: (_ for _ in ()).throw(AssertionError("cluster started")))
    start = time.monotonic()
    result = CliRunner().invoke(main, ["sweep", "toy", "--profile",
                                       str(profile(tmp_path, executor="ray", ray={"num_gpus_per_run": 1}))])
    assert result.exit_code == 1 and "num_gpus_per_run" in result.output
    assert time.monotonic() - start < 15


def test_task_module_that_cannot_be_imported_is_named(monkeypatch):
    from smc_lib.tasks import get_task

    monkeypatch.setenv("SMC_TASK_MODULES", "toy_task, no_such_task_module")
    with pytest.raises(runs.SMCError, match="SMC_TASK_MODULES names 'no_such_task_module'"):
        get_task("toy")


def test_toy_task_lives_with_the_tests_not_in_the_library():
    from smc_lib.tasks import task_names

    assert "toy" in task_names()                        # registered through SMC_TASK_MODULES (conftest)
    assert not (Path(smc_lib.__file__).parent / "tasks" / "toy.py").exists()
