"""Published records: the key covers resolved defaults and code versions, `smc verify` recomputes records,
and one IMP chain serves every LTH sparsity."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from smc_lib import runs
from smc_lib.errors import SMCError
from smc_lib.methods import get_method
from smc_lib.runs import RunConfig, Store, execute, result_path, run_dir
from smc_lib.verify import verify

TOY_TASK = {"n_train": 256, "n_dev": 64, "n_test": 64}
TOY_TRAIN = {"steps": 8}


def toy(method: str, sparsity: float = 0.0, **kw) -> RunConfig:
    return RunConfig(task="toy", dataset="toy", model="toy", method=method, sparsity=sparsity, profile="test",
                     device="cpu", task_params=TOY_TASK, train=TOY_TRAIN, **kw)


@pytest.fixture
def trained(count_training) -> list[RunConfig]:
    return count_training


def test_records_and_artifacts_live_apart(tmp_path: Path):
    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    res = execute(toy("dense"), store)
    assert result_path(toy("dense"), store) == tmp_path / "records" / "toy" / f"{res.key}.json"
    assert (tmp_path / "artifacts" / "toy" / res.key / "model.pt").exists()
    assert not list((tmp_path / "records").rglob("*.pt"))
    assert res.resolved["task"]["version"] >= 1 and res.resolved["method"]["version"] >= 1
    assert res.eval_examples == TOY_TASK["n_dev"] and res.tolerance == pytest.approx(100 / 64)


def test_verify_republish_replaces_what_reproduced_naming_the_committed_revision(tmp_path, monkeypatch, trained):
    """A record published from uncommitted code (`+dirty`) is repaired by recomputing it at a commit; a record
    that does not reproduce is reported and left as it is."""
    from smc_lib import verify as V
    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    for cfg in (toy("dense"), toy("omp_before", 0.5)):
        execute(cfg, store)
    dense, pruned = result_path(toy("dense"), store), result_path(toy("omp_before", 0.5), store)
    for path, edit in ((dense, {"git_revision": "a" * 40 + "+dirty"}), (pruned, {"git_revision": "a" * 40})):
        path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))
    rec = json.loads(pruned.read_text())
    rec["metrics"]["accuracy"] += 5.0                               # a hand edit: must not be laundered
    pruned.write_text(json.dumps(rec))
    committed = "c" * 40
    monkeypatch.setattr(runs, "git_revision", lambda: committed)
    monkeypatch.setattr(V, "git_revision", lambda: committed)
    checks = verify(store.records, store.artifacts, echo=lambda s: None, republish=True)
    assert {c.path: c.ok for c in checks} == {dense: True, pruned: False}
    assert json.loads(dense.read_text())["git_revision"] == committed
    assert runs.read_record(dense).metrics == execute(toy("dense"), store).metrics
    assert json.loads(pruned.read_text()) == rec                    # not reproduced: untouched
    assert [c for c in checks if c.ok][0].republished == committed


def test_verify_republish_refuses_uncommitted_code_before_training(tmp_path, monkeypatch, trained):
    from smc_lib import verify as V
    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    execute(toy("dense"), store)
    before = result_path(toy("dense"), store).read_text()
    monkeypatch.setattr(V, "git_revision", lambda: "c" * 40 + "+dirty")
    n = len(trained)
    with pytest.raises(SMCError, match="not committed"):
        verify(store.records, store.artifacts, echo=lambda s: None, republish=True)
    assert len(trained) == n and result_path(toy("dense"), store).read_text() == before


def test_git_revision_is_dirty_for_code_changes_not_for_records_or_dvc_lock(tmp_path: Path):
    """A sweep adds records and `dvc repro` rewrites dvc.lock while the code stays committed: neither makes the
    records it computes name a dirty revision; a changed code or params file does."""
    import subprocess
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)
    git("init", "-q")
    for f in ("code.py", "dvc.lock", "results/cpu/t/k.json"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("0\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    sha = runs.git_revision(tmp_path)
    assert len(sha) == 40
    (tmp_path / "dvc.lock").write_text("1\n")
    (tmp_path / "results/cpu/t/k.json").write_text("1\n")
    assert runs.git_revision(tmp_path) == sha
    (tmp_path / "code.py").write_text("1\n")
    assert runs.git_revision(tmp_path) == sha + "+dirty"


def test_a_changed_default_changes_the_key(monkeypatch):
    """Defaults are resolved into the key: a new default for RigL's drop fraction is a new run."""
    cfg = toy("random_rigl", 0.5)
    before = cfg.key()
    rigl = get_method("random_rigl")
    monkeypatch.setattr(rigl, "defaults", {**rigl.defaults, "alpha": 0.5})
    assert cfg.key() != before
    assert cfg.identity()["resolved"]["method"]["options"]["alpha"] == 0.5


def test_resolved_train_config_is_in_the_key():
    """The same run written with the task's default spelled out has the same key; another value does not."""
    a = toy("dense")
    lr = a.identity()["resolved"]["train"]["lr"]
    assert dataclasses.replace(a, train={**TOY_TRAIN, "lr": lr}).key() == a.key()
    assert dataclasses.replace(a, train={**TOY_TRAIN, "lr": lr * 2}).key() != a.key()


def test_data_fingerprint_changes_with_the_data(tmp_path: Path):
    f = tmp_path / "a.csv"
    f.write_text("x\n1\n")
    first = runs.data_fingerprint([f])
    f.write_text("x\n2\n")
    assert runs.data_fingerprint([f]) != first


def test_verify_passes_and_an_edited_metric_fails_naming_its_record(tmp_path: Path):
    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    for cfg in (toy("dense"), toy("omp_before", 0.5)):
        execute(cfg, store)
    assert all(c.ok for c in verify(store.records, store.artifacts, echo=lambda s: None))
    path = result_path(toy("omp_before", 0.5), store)
    rec = json.loads(path.read_text())
    rec["metrics"]["accuracy"] += 5.0                               # a hand edit
    path.write_text(json.dumps(rec))
    checks = verify(store.records, store.artifacts, echo=lambda s: None)
    bad = [c for c in checks if not c.ok]
    assert [c.path for c in bad] == [path] and str(path) in bad[0].problem


def test_changed_behaviour_is_caught_until_the_version_is_bumped(tmp_path: Path, monkeypatch, trained):
    """A method whose code changes keeps its keys, so the cache would serve the old numbers: `smc verify`
    fails on exactly its records; bumping its `version` changes exactly their keys, and `smc sweep` then
    recomputes exactly those records."""
    from smc_lib import sweep

    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    grid = [toy("dense"), toy("omp_before", 0.5), toy("random_before", 0.5), toy("random_before", 0.2)]
    sweep.sweep(grid, profile=None, store=store, progress=False)
    keys = {c.method + str(c.sparsity): c.key() for c in grid}

    random_before = get_method("random_before")
    real_fit = random_before.fit

    def changed(self, task, model, cfg, ctx, masks, hooks=(), tag="fit"):  # its behaviour changes in code
        return real_fit(self, task, model, dataclasses.replace(cfg, lr=cfg.lr * 30), ctx, masks, hooks, tag)

    monkeypatch.setattr(random_before, "fit", changed)
    checks = verify(store.records, store.artifacts, echo=lambda s: None)
    failed = {c.record.config["method"] + str(c.record.config["sparsity"]) for c in checks if not c.ok}
    assert "random_before0.5" in failed and failed <= {"random_before0.5", "random_before0.2"}

    monkeypatch.setattr(random_before, "version", random_before.version + 1)   # the bump
    changed = {k for k, c in zip(keys, grid) if c.key() != keys[k]}
    assert changed == {"random_before0.5", "random_before0.2"}
    trained.clear()
    sweep.sweep(grid, profile=None, store=store, progress=False)
    assert sorted((c.method, c.sparsity) for c in trained) == [("random_before", 0.2), ("random_before", 0.5)]


def test_a_model_version_changes_the_keys_of_that_models_runs_only(monkeypatch):
    """A change that touches one model (protein's `tape:<folder>` loading) is versioned in `model_versions`:
    the keys of that model's runs change, every other key stays, so the other records stay valid."""
    from smc_lib.tasks import get_task

    configs = [toy("dense"), toy("omp_before", 0.5), dataclasses.replace(toy("dense"), model="toy-large")]
    before = [c.key() for c in configs]
    monkeypatch.setattr(get_task("toy"), "model_versions", {"toy-large": 2})
    after = [c.key() for c in configs]
    assert after[:2] == before[:2] and after[2] != before[2]
    assert runs.resolve(configs[2])["task"]["model_version"] == 2
    assert "model_version" not in runs.resolve(configs[0])["task"]
    assert get_task("protein").model_versions == {"tape:": 2}


def test_one_imp_chain_serves_every_lth_sparsity(tmp_path: Path, trained):
    """LTH at round k is the record at 1 - 0.8^k: 0.488 then 0.6723 train 5 rounds and the dense run, not
    3 + 5; the chained result equals the one computed in one process; lost artifacts are recomputed."""
    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    third = execute(toy("lth", 0.488), store)
    assert [(c.method, c.sparsity) for c in trained] == [("lth", 0.488), ("lth", 0.36), ("lth", 0.2), ("dense", 0.0)]
    assert {0.2, 0.36, 0.488} == {json.loads(p.read_text())["config"]["sparsity"]
                                  for p in (store.records / "toy").glob("*.json")} - {0.0}
    trained.clear()
    execute(toy("lth", 0.6723), store)
    assert [(c.method, c.sparsity) for c in trained] == [("lth", 0.6723), ("lth", 0.5904)]

    from smc_lib.tasks import get_task
    task = get_task("toy")("toy", "toy", seed=0, **TOY_TASK)
    method = get_method("lth")(0.488)
    cfg = runs.train_config(toy("lth", 0.488), task)
    fit, masks = method.run(task, task.build_model(), cfg, get_method("lth").__mro__[1].__module__ and
                            __import__("smc_lib.methods.base", fromlist=["MethodContext"]).MethodContext())
    assert fit.metrics["accuracy"] == pytest.approx(third.metrics["accuracy"], abs=1e-9)
    assert masks.sparsity() == pytest.approx(third.achieved_sparsity)

    import shutil
    shutil.rmtree(store.artifacts)                                  # a new sitting: no artifacts
    trained.clear()
    execute(toy("lth", 0.7379), store)
    assert [(c.method, c.sparsity) for c in trained][:2] == [("lth", 0.7379), ("lth", 0.6723)]


def test_a_recomputed_artifact_that_disagrees_with_its_record_is_an_error(tmp_path: Path):
    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    execute(toy("dense"), store)
    path = result_path(toy("dense"), store)
    rec = json.loads(path.read_text())
    rec["metrics"]["accuracy"] -= 10
    path.write_text(json.dumps(rec))
    import shutil
    shutil.rmtree(run_dir(toy("dense"), store))
    with pytest.raises(SMCError, match=str(path)):
        execute(toy("omp_after", 0.5), store)


def test_a_records_wall_time_is_its_own_training(tmp_path: Path, monkeypatch):
    """The chain's earlier rounds and the dense run are computed before the clock starts: the record at
    round 2 times round 2 only, not the dense run and round 1 it triggered."""
    import time as _time

    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    real = runs._train
    nested = []

    def slow(cfg, st, data_dir):
        nested.append(cfg.sparsity)
        if cfg.sparsity != 0.36:
            _time.sleep(0.5)                    # the dependencies are slow, round 2 is not
        return real(cfg, st, data_dir)

    monkeypatch.setattr(runs, "_train", slow)
    res = execute(toy("lth", 0.36), store)
    assert nested == [0.36, 0.2, 0.0] and res.wall_s < 0.5


def test_a_failed_run_leaves_nothing_behind_and_a_finished_one_no_lock(tmp_path: Path, monkeypatch):
    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    execute(toy("dense"), store)
    assert not list(tmp_path.rglob("*.lock"))

    def broken(cfg, st, data_dir):
        run_dir(cfg, st).mkdir(parents=True, exist_ok=True)
        raise SMCError("boom")

    monkeypatch.setattr(runs, "_train", broken)
    with pytest.raises(SMCError, match="boom"):
        execute(toy("omp_before", 0.5), store)
    assert not run_dir(toy("omp_before", 0.5), store).exists()
    assert not result_path(toy("omp_before", 0.5), store).exists()


def test_smc_run_without_fold_is_the_pipelines_fold(tmp_path: Path):
    """`smc run` with no --fold takes the section's first fold, so it has the key of the sweep's run."""
    import yaml

    from smc_lib import sweep
    from smc_lib.config import load_profile

    prof = {"profile": "t", "device": "cpu", "seeds": [0], "sparsities": [0.5],
            "toy": {"datasets": ["toy"], "models": ["toy"], "methods": ["dense"], "folds": [3],
                    "task": TOY_TASK, "train": TOY_TRAIN}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(prof))
    ran = sweep.run("toy", "toy", "dense", profile=str(path), store=tmp_path / "s")
    assert ran.config["fold"] == 3
    assert ran.key == sweep.grid(load_profile(str(path)), "toy")[0].key()


def test_obert_defaults_to_scope_encoder():
    """Appendix C / Kurtic et al.: oBERT prunes the encoder's attention and FFN; embeddings and heads stay dense."""
    assert toy("obert", 0.5).identity()["resolved"]["task"]["scope"] == "encoder"
    assert toy("gmp", 0.5).identity()["resolved"]["task"]["scope"] == "all"          # the task's default
    assert toy("obert", 0.5, scope="all").identity()["resolved"]["task"]["scope"] == "all"
    assert get_method("obert")(0.5).scope == "encoder"


def test_records_carry_a_mask_sample_and_the_dense_lazy_regime_numbers(tmp_path: Path):
    """The analysis pages render from records: a sparse record's mask sample gives the Jaccard overlap of two
    masks (exactly 1 with itself, near the exact value for two different masks); a dense record has the
    relative weight change and the pretrained-vs-fine-tuned magnitude-mask overlap."""
    import numpy as np
    import torch

    from smc_lib import analysis
    from smc_lib.masks import MaskSet

    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    dense = execute(toy("dense"), store)
    lazy = dense.analysis["lazy_regime"]
    assert set(lazy["relative_change"]) == {r["param"] for r in dense.layerwise}
    assert all(v > 0 for v in lazy["relative_change"].values())
    assert set(lazy["magnitude_mask_overlap"]) == {f"{s:g}" for s in analysis.PAPER_SPARSITIES}
    assert all(0 < v <= 1 for v in lazy["magnitude_mask_overlap"].values())
    a, b = execute(toy("omp_before", 0.5), store), execute(toy("random_before", 0.5), store)
    sizes = {r["param"]: r["numel"] for r in a.layerwise}
    sa, sb = analysis.unpack(a.analysis["mask_sample"], sizes), analysis.unpack(b.analysis["mask_sample"], sizes)
    assert analysis.jaccard(sa, sa) == 1.0
    gen = torch.Generator().manual_seed(0)
    big = {"w": torch.randn(100, 100, generator=gen)}
    m1 = MaskSet.from_scores(big, 0.5, transform=torch.abs)
    m2 = MaskSet.from_scores({"w": big["w"] + 0.5 * torch.randn(100, 100, generator=gen)}, 0.5, transform=torch.abs)
    exact = float((m1.masks["w"] & m2.masks["w"]).sum() / (m1.masks["w"] | m2.masks["w"]).sum())
    est = analysis.jaccard(analysis.unpack(analysis.mask_sample(m1, 4096), {"w": 10000}, 4096),
                           analysis.unpack(analysis.mask_sample(m2, 4096), {"w": 10000}, 4096))
    assert abs(est - exact) < 0.03 and 0 < analysis.jaccard(sa, sb) < 1
    assert np.isnan(analysis.jaccard({}, {}))


def test_dense_dependency_is_the_plain_dense_run(tmp_path: Path):
    """A distilled or scope-restricted method starts from (and distils from) the section's own dense run:
    same key, no second dense training, and a dense config carrying `distill` cannot wait on itself."""
    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    plain = toy("dense")
    variant = dataclasses.replace(toy("lth_norewind", 0.2, scope="encoder"),
                                  train={**TOY_TRAIN, "distill": {"weight": 1.0, "temperature": 2.0}})
    assert variant.dense().key() == plain.key()
    execute(variant, store)                                  # trains the plain dense run once, then the variant
    assert {json.loads(p.read_text())["config"]["method"] for p in (store.records / "toy").glob("*.json")} == \
        {"dense", "lth_norewind"}
    odd = dataclasses.replace(plain, train={**TOY_TRAIN, "distill": {"weight": 0.5, "temperature": 2.0}})
    execute(odd, store)                                      # used to deadlock on its own lock


def test_provenance_names_a_local_model_by_its_weights_and_a_hub_model_by_its_commit(tmp_path: Path):
    from smc_lib.tasks.hub import provenance

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.safetensors").write_bytes(b"weights")
    local = provenance(str(tmp_path / "m"))
    assert local["path"].endswith("/m") and not local["path"].startswith("/")
    assert len(local["sha256"]["model.safetensors"]) == 64

    class Config:
        _commit_hash = "abc123"

    class Model:
        config = Config()

    assert provenance("facebook/mbart-large-cc25", Model()) == {"hub": "facebook/mbart-large-cc25", "revision": "abc123"}
    assert provenance("org/model", None, "v1.0")["revision"] == "v1.0"


def test_the_grid_cost_counts_the_imp_rounds_between_its_points(tmp_path: Path):
    from smc_lib.sweep import chain_rounds, core_seconds, status

    configs = [toy("dense"), toy("lth", 0.2), toy("lth", 0.488), toy("omp_after", 0.488)]
    assert [(c.method, c.sparsity) for c in chain_rounds(configs)] == [("lth", 0.36)]     # k = 2 of the k = 3 chain
    assert chain_rounds([toy("lth", 0.7903)])[-1].sparsity == 0.7379                     # k = 6 of k = 7
    prof = {"profile": "test", "path": "test.yaml", "records": str(tmp_path / "records"), "device": "cpu",
            "store": str(tmp_path / "runs"), "seeds": [0], "dense_seeds": [0], "sparsities": [0.2, 0.488],
            "toy": {"datasets": ["toy"], "models": ["toy"], "methods": ["dense", "lth"], "folds": [None],
                    "task": TOY_TASK, "train": TOY_TRAIN}}
    store = Store(tmp_path / "records", tmp_path / "runs")
    done = [execute(toy("dense"), store), execute(toy("lth", 0.488), store)]   # trains the 0.2 and 0.36 rounds too
    row = status(prof).iloc[0]
    assert (row["records"], row["grid"], row["rounds"]) == (3, 3, 1)      # dense, lth 0.2, lth 0.488; round 0.36
    paid = done + [runs.load_result(toy("lth", s), store) for s in (0.2, 0.36)]
    assert row["core_hours"] == pytest.approx(sum(core_seconds(r) for r in paid) / 3600, abs=0.01)
    assert row["projected_core_hours"] == pytest.approx(row["core_hours"], abs=0.1)    # nothing left to train


def test_a_recomputation_never_resumes_an_earlier_one(tmp_path: Path):
    """`smc verify` must train anew: resume state left in the run's folder (here a finished checkpoint of a
    differently seeded run) is dropped before the recomputation and none is left after it."""
    store = Store(tmp_path / "records", tmp_path / "runs")
    cfg = toy("dense")
    published = execute(cfg, store)
    other = dataclasses.replace(cfg, seed=1)
    execute(other, store)
    import torch
    from smc_lib.tasks import get_task
    from smc_lib.train import fit

    task = get_task("toy")(**TOY_TASK, seed=1)
    ckpt = run_dir(cfg, store) / "fit.ckpt"                     # a finished run's resume state, seed 1's weights
    fit(task, task.build_model(), runs.train_config(other, task), checkpoint=ckpt)
    assert ckpt.exists()
    torch.manual_seed(0)
    again = runs.recompute(cfg, store)
    assert again.metrics == published.metrics
    assert not list(run_dir(cfg, store).rglob("*.ckpt"))


def _profile_at(tmp_path: Path) -> dict:
    """The smoke profile with its records and artifacts under tmp_path (the sections' store)."""
    from smc_lib import load_profile

    return {**load_profile("smoke"), "records": str(tmp_path / "records"), "store": str(tmp_path / "artifacts")}


def test_an_analysis_folder_never_retrains_its_sections_dense_run(tmp_path: Path, trained):
    """The roadmap and Table 1 keep their records in a folder of their own; the dense run they start from is
    the section's published one, copied byte for byte, not trained again."""
    from smc_lib import sweep

    prof = _profile_at(tmp_path)
    section = sweep.profile_store(prof)
    sweep.sweep([toy("dense")], profile=prof, progress=False)
    analysis = Store(records=section.records / "analysis", artifacts=section.artifacts)
    trained.clear()
    sweep.sweep([toy("omp_after", 0.5), toy("lth", 0.36)], profile=prof, store=analysis, progress=False)
    assert sorted((c.method, c.sparsity) for c in trained) == [("lth", 0.2), ("lth", 0.36), ("omp_after", 0.5)]
    dense = result_path(toy("dense"), analysis)
    assert dense.read_bytes() == result_path(toy("dense"), section).read_bytes()
    assert sweep.share_dense([toy("omp_after", 0.5)], section, analysis) == 0        # already there


def test_verify_checks_an_analysis_folders_records_against_that_folder(tmp_path: Path):
    """`smc verify` finds the records of an analysis' own folder, and recomputes each against it: an IMP
    chain's earlier round is read from there, never recomputed into the section's folder."""
    from smc_lib import sweep

    prof = _profile_at(tmp_path)
    section = sweep.profile_store(prof)
    sweep.sweep([toy("dense")], profile=prof, progress=False)
    analysis = Store(records=section.records / "analysis", artifacts=section.artifacts)
    sweep.sweep([toy("lth", 0.36)], profile=prof, store=analysis, progress=False)
    before = sorted((section.records / "toy").glob("*.json"))
    checks = verify(section.records, section.artifacts, echo=lambda s: None)
    assert {c.path for c in checks} == {result_path(toy("dense"), section), result_path(toy("dense"), analysis),
                                        result_path(toy("lth", 0.2), analysis), result_path(toy("lth", 0.36), analysis)}
    assert all(c.ok for c in checks)
    assert sorted((section.records / "toy").glob("*.json")) == before      # nothing written beside the section's
    path = result_path(toy("lth", 0.36), analysis)
    rec = json.loads(path.read_text())
    rec["metrics"]["accuracy"] += 5.0                               # a hand edit
    path.write_text(json.dumps(rec))
    bad = [c for c in verify(section.records, section.artifacts, echo=lambda s: None) if not c.ok]
    assert [c.path for c in bad] == [path] and str(path) in bad[0].problem


def test_esm_modules_builds_table_1s_runs_in_their_own_folder():
    from smc_lib import load_profile, sweep

    prof = load_profile("cpu")
    configs, store = sweep.esm_modules(prof)
    seeds = prof["protein"]["notebook"]["module_table"]["seeds"]
    assert len(configs) == 6 * len(seeds) and store.records == sweep.profile_store(prof).records / "esm_modules"
    assert sum(c.method == "dense" for c in configs) == len(seeds)
    assert {c.scope for c in configs if c.method != "dense"} == {"custom"}
    published = {p.stem for p in (store.records / "protein").glob("*.json")}
    assert published and {c.key() for c in configs} == published           # the committed Table 1 records


def test_records_missing_lists_what_is_left_and_the_sweep_that_computes_it(tmp_path: Path, trained):
    """`smc records --missing`: per dataset, method and seed, the sparsities without a record and the IMP
    rounds still to train, with a command that, run, leaves nothing missing and trains nothing twice."""
    from click.testing import CliRunner
    from smc_lib import sweep
    from smc_lib.cli import main

    prof = {"profile": "test", "device": "cpu", "seeds": [0], "records": str(tmp_path / "records"),
            "store": str(tmp_path / "artifacts"), "path": str(tmp_path / "test.yaml"),
            "toy": {"datasets": ["toy"], "models": ["toy"], "methods": ["dense", "omp_before", "lth"],
                    "sparsities": [0.2, 0.488], "task": TOY_TASK, "train": TOY_TRAIN}}
    sweep.sweep([toy("dense"), toy("omp_before", 0.2)], profile=prof, progress=False)
    left = sweep.pending(prof).set_index("method")
    assert list(left.index) == ["omp_before", "lth"]
    assert left.loc["omp_before", "sparsities"] == "0.488" and left.loc["lth", "sparsities"] == "0.2, 0.488"
    assert left.loc["lth", "rounds"] == 1                                   # 0.36 is a round, not a grid point
    assert left.loc["lth", "command"] == "smc sweep toy --dataset toy --method lth"

    trained.clear()
    for command in left["command"]:
        args = command.split()[2:]
        sweep.cli_sweep(args[0], profile=prof, datasets=(args[2],), methods=(args[4],))
    assert sorted((c.method, c.sparsity) for c in trained) == [("lth", 0.2), ("lth", 0.36), ("lth", 0.488),
                                                                ("omp_before", 0.488)]
    assert sweep.pending(prof).empty
    path = tmp_path / "test.yaml"
    path.write_text(json.dumps({k: v for k, v in prof.items() if k != "path"}))     # JSON is YAML
    out = CliRunner().invoke(main, ["records", "--missing", "--profile", str(path)])
    assert out.exit_code == 0 and "nothing missing" in out.output, out.output


def test_smc_sweep_runs_an_analysis_into_its_own_folder_restricted_like_a_section(tmp_path: Path, trained):
    """`smc sweep obert_roadmap --method lth --sparsity S` computes those roadmap runs into the roadmap's
    folder, starting from the section's published dense run; an unknown option is one clear error."""
    from smc_lib import sweep

    prof = _profile_at(tmp_path)
    configs, _, store = sweep.roadmap(prof)
    dense = configs[0].dense()
    sweep.sweep([dense], profile=prof, progress=False)
    first = min(c.sparsity for c in configs)
    trained.clear()
    sweep.cli_sweep("obert_roadmap", profile=prof, methods=("lth",), sparsities=(first,))
    assert [(c.method, c.sparsity, c.scope) for c in trained] == [("lth", first, "encoder")]
    assert result_path(dense, store).exists()
    assert len(sweep.restrict(configs, methods=("lth",))) == len([c for c in configs if c.method == "lth"])
    with pytest.raises(SMCError, match="unknown sweep option"):
        sweep.restrict(configs, method=("lth",))


def test_records_status_counts_an_analysis_without_its_sections_dense_run(tmp_path: Path):
    """`smc records` has a row per analysis with runs of its own: its records, its IMP rounds and their cost;
    the dense run it copied from its section is the section's record and cost, not the analysis'."""
    from smc_lib import sweep
    from smc_lib.runs import load_result

    prof = _profile_at(tmp_path)
    configs, _, store = sweep.roadmap(prof)
    sweep.sweep([configs[0].dense()], profile=prof, progress=False)
    sweep.sweep(configs, profile=prof, store=store, progress=False)
    rounds = sweep.chain_rounds(configs)
    copied = result_path(configs[0].dense(), store)
    rec = json.loads(copied.read_text())
    copied.write_text(json.dumps({**rec, "cpu_s": 36_000.0}))      # 10 core-hours, were the copy counted
    row = sweep.status(prof).set_index("section").loc["obert_roadmap"]
    assert (row["records"], row["grid"], row["rounds"]) == (len(configs), len(configs), len(rounds))
    paid = [load_result(c, store) for c in [*configs, *rounds]]
    assert row["core_hours"] == round(sum(sweep.core_seconds(r) for r in paid) / 3600, 2) < 1


def test_a_sweep_puts_off_a_run_another_process_is_training(tmp_path: Path, trained):
    """Two sweeps over one grid: a run whose lock another process holds is put off to the end, so the
    sweep trains the rest meanwhile (it used to wait idle), then reads the other's record or waits for it."""
    import fcntl
    import threading
    import time

    from smc_lib import sweep

    store = Store(records=tmp_path / "records", artifacts=tmp_path / "artifacts")
    busy, free = toy("dense"), dataclasses.replace(toy("dense"), seed=1)
    lock = runs._lock_path(busy, store)
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as held:                              # "another process" training `busy`
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=sweep.run_local, args=([busy, free], store, tmp_path, False))
        worker.start()
        deadline = time.monotonic() + 60
        while not result_path(free, store).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.join(timeout=0.5)
        assert worker.is_alive() and [c.seed for c in trained] == [1]   # the free run trained while it waited
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(timeout=60)
    assert not worker.is_alive() and [c.seed for c in trained] == [1, 0]


def test_every_published_record_names_a_commit_of_this_history():
    """Records are published only from committed code: each names a clean revision that is an ancestor of
    HEAD, so `git checkout <revision>` gives the code that computed it (`smc verify --republish` repairs one
    that does not)."""
    import subprocess
    root = Path(__file__).resolve().parents[1]
    git = lambda *a: subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True)
    if git("rev-parse", "--is-shallow-repository").stdout.strip() != "false":
        pytest.skip("not a full git clone: the history to check revisions against is missing")
    revisions: dict[str, list[str]] = {}
    for rel in git("ls-files", "results").stdout.split():             # the published ones, not a test's
        if rel.endswith(".json"):
            rev = json.loads((root / rel).read_text()).get("git_revision")
            revisions.setdefault(str(rev), []).append(rel)
    dirty = {r: p for r, p in revisions.items() if r == "None" or r.endswith("+dirty")}
    assert not dirty, f"records computed from uncommitted code: {dirty}"
    foreign = {r: p for r, p in revisions.items() if git("merge-base", "--is-ancestor", r, "HEAD").returncode}
    assert not foreign, f"records naming a revision outside this history: {foreign}"
