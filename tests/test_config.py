"""Profiles: the shipped ones validate; every kind of mistake fails at load time with the file and the fix."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from smc_lib import config
from smc_lib.config import PAPER_SPARSITIES, load_profile, section
from smc_lib.errors import SMCError

ROOT = Path(__file__).resolve().parents[1]
GOOD = {"profile": "t", "device": "cpu", "toy": {"datasets": ["toy"], "models": ["toy"], "methods": ["dense", "gmp"],
                                                 "sparsities": [0.2], "train": {"steps": 3}}}


def write(tmp_path: Path, data, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def with_section(**changes) -> dict:
    return {**GOOD, "toy": {**GOOD["toy"], **changes}}


@pytest.mark.parametrize("name", ["smoke", "cpu", "paper"])
def test_shipped_profiles_validate(name: str):
    prof = load_profile(name)
    assert prof["profile"] == name and Path(prof["path"]).name == f"{name}.yaml"
    assert prof["device"] == "auto"
    assert {"arithmetic", "commonsense"} <= set(config.sections(prof))


def test_paper_profile_carries_the_paper():
    prof = load_profile("paper")
    assert prof["sparsities"] == list(PAPER_SPARSITIES)
    cs = section(prof, "commonsense", "winogrande")
    assert cs["models"] == ["roberta-large"]
    assert cs["train"] == {"optimizer": "adamw", "lr": 1e-5, "weight_decay": 0.01, "betas": [0.9, 0.98], "eps": 1e-6,
                           "schedule": "linear", "batch_size": 32, "steps": 23750, "warmup_steps": 2375}
    ar = section(prof, "arithmetic", "svamp", "graph2tree")
    assert ar["task"]["hidden"] == 384 and ar["train"]["lr"] == 8e-4 and ar["train"]["batch_size"] == 8
    assert ar["train"]["epochs"] == 50 and ar["folds"] == [None]
    assert set(config.sections(prof)) == {"commonsense", "arithmetic", "protein", "translation"}
    pr = section(prof, "protein", "meltome")
    assert pr["models"] == ["esm1b_t33_650M_UR50S"] and pr["scope"] == "encoder" and pr["train"]["batch_size"] == 2
    tr = section(prof, "translation", "5-to-5")
    assert tr["train"]["lr"] == 3e-5 and tr["train"]["batch_size"] == 32 and tr["task"]["label_smoothing"] == 0.2


def test_active_profile_comes_from_params_yaml(tmp_path: Path):
    assert config.active_profile(ROOT / "params.yaml") == "cpu"
    assert config.active_profile(write(tmp_path, {"profile": "paper"}, "params.yaml")) == "paper"


def test_sparsity_levels_are_one_minus_point_eight_to_the_k():
    assert PAPER_SPARSITIES[:3] == (0.2, 0.36, 0.488) and len(PAPER_SPARSITIES) == 10
    assert PAPER_SPARSITIES[-1] == pytest.approx(1 - 0.8**10, abs=1e-4)


def test_good_profile_loads(tmp_path: Path):
    prof = load_profile(write(tmp_path, GOOD))
    assert section(prof, "toy")["seeds"] == [0]  # global default filled in


@pytest.mark.parametrize("data, message", [
    ("toy: [a, b\n", r"malformed YAML at line \d+"),
    ("- just\n- a list\n", "must be a mapping"),
    ({**GOOD, "devise": "cpu"}, "unknown key 'devise'"),
    ({**GOOD, "device": "gpu"}, "device 'gpu'"),
    ({**GOOD, "executor": "slurm"}, "executor 'slurm'"),
    ({**GOOD, "threads": 0}, "threads must be a positive integer"),
    ({**GOOD, "threads": "two"}, "threads must be a int"),
    ({**GOOD, "ray": {"adress": "auto"}}, "unknown ray key"),
    ({**GOOD, "sparsities": [0.2, 1.0]}, r"outside \[0, 1\)"),
    (with_section(sparsities=[-0.1]), r"outside \[0, 1\)"),
    (with_section(sparsities=0.5), "must be a list"),
    (with_section(method=["gmp"]), "unknown key 'method'"),
    (with_section(methods=["gmp", "magic"]), "unknown method 'magic'"),
    (with_section(datasets=["imagenet"]), "unknown dataset 'imagenet'"),
    (with_section(train={"stepz": 3}), r"unknown train setting\(s\) \['stepz'\]"),
    (with_section(train={"seed": 3}), "unknown train setting"),  # seeds come from `seeds:`
    (with_section(per_dataset={"toy": {"train": {"lrr": 1}}}), "per_dataset.toy"),
    (with_section(per_dataset={"toy": {"sparsities": [2]}}), r"outside \[0, 1\)"),
    (with_section(method_options={"nope": {}}), "unknown method 'nope'"),
    (with_section(scope="custom", scope_patterns={"inclde": ["fc1"]}), "scope_patterns takes include"),
    ({**GOOD, "chess": {"datasets": ["x"]}}, "no task module registers 'chess'"),
    ({**GOOD, "budgets": {"main": {"sections": ["chess"], "core_hours": 2}}}, r"budgets.main.sections: no section or analysis 'chess'"),
    ({**GOOD, "budgets": {"main": {"sections": ["toy"], "core_hours": 0}}}, "core_hours must be a positive number"),
    ({**GOOD, "budgets": {"main": {"sections": ["toy"], "hours": 2}}}, "must map sections"),
])
def test_mistakes_fail_at_load_naming_the_file(tmp_path: Path, data, message: str):
    path = write(tmp_path, data)
    with pytest.raises(SMCError, match=message) as err:
        load_profile(path)
    assert str(path) in str(err.value)


def test_a_budget_is_not_a_section(tmp_path: Path):
    prof = load_profile(write(tmp_path, {**GOOD, "budgets": {"main": {"sections": ["toy"], "core_hours": 2, "cuts": "none"}}}))
    assert config.sections(prof) == ["toy"] and prof["budgets"]["main"]["core_hours"] == 2


def test_a_budget_may_cover_an_analysis_with_runs_of_its_own(tmp_path: Path):
    prof = load_profile(write(tmp_path, {**GOOD, "budgets": {"roadmap": {"sections": ["obert_roadmap"], "core_hours": 8}}}))
    assert prof["budgets"]["roadmap"]["sections"] == ["obert_roadmap"]


def test_unimplemented_sections_are_documentation_only(tmp_path: Path):
    prof = load_profile(write(tmp_path, {**GOOD, "chess": {"implemented": False, "datasets": ["x"]}}))
    assert config.sections(prof) == ["toy"]


def test_unknown_profile_names_the_choices():
    with pytest.raises(SMCError, match="choose one of: .*cpu.*paper"):
        load_profile("gpu-cluster")


def test_missing_section_is_an_error():
    with pytest.raises(SMCError, match="no section 'toy'"):
        section(load_profile("cpu"), "toy")


def test_module_entry_points_turn_user_errors_into_one_line():
    from smc_lib.errors import run_main
    from scripts.pilot import arithmetic

    def bad():
        arithmetic.main(["--data-dir", "/nonexistent", "--datasets", "mawps", "--max-train", "4"])

    with pytest.raises(SystemExit) as exc:
        run_main(bad)
    assert str(exc.value).startswith("error: missing ") and "dvc pull" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_profile_threads_hold_for_the_run_and_are_restored():
    import torch

    from smc_lib.runtime import torch_threads

    before = torch.get_num_threads()
    seen = []
    with torch_threads(1):
        seen.append(torch.get_num_threads())
    with torch_threads(None):
        seen.append(torch.get_num_threads())
    assert seen == [1, before] and torch.get_num_threads() == before
    assert load_profile("cpu")["threads"] == 1 and load_profile("paper")["threads"] is None


PAPER_INTERVALS = {500, 1000, 4000}   # §4 of the paper: GMP's update interval, which RigL shares


@pytest.mark.parametrize("task,dataset,steps", [("commonsense", "csqa", 3000), ("commonsense", "winogrande", 23750),
                                                ("commonsense", "race", 16475), ("arithmetic", "mawps", 19250),
                                                ("arithmetic", "svamp", 19613)])
def test_paper_profile_gmp_and_rigl_share_one_interval_from_the_paper(task, dataset, steps):
    """`steps`: the paper's run length (RACE: 3 epochs of 87 866 questions at 16; arithmetic: 50 epochs of
    MAWPS fold 0 at 4, of MAWPS + ASDiv-A at 8). Without a profile value GMP would update every 210 steps
    and RigL every 225 on CSQA."""
    from smc_lib.config import section
    from smc_lib.schedules import GMPSchedule

    prof = load_profile("paper")
    opts = section(prof, task, dataset)["method_options"]
    interval = opts["gmp"]["frequency"]
    assert interval in PAPER_INTERVALS
    assert all(opts[m]["every"] == interval for m in ("random_rigl", "omp_rigl", "snip_rigl"))
    assert len(GMPSchedule(0.5, steps, frequency=interval).update_steps()) >= 5
