"""The DVC pipeline's wiring, on the real dvc.yaml and profiles in a scratch repository.

The stage commands (`papermill`, `smc`) are replaced by stubs on PATH that write each stage's outputs
in a blink, so what is tested is DVC's view of the graph: a no-op `dvc repro` runs nothing, editing one
section's parameter reruns that section and the report only, and `dvc exp run -S profile=paper` is
the one command that switches profile.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DVC = Path(sys.executable).with_name("dvc")

PAPERMILL_STUB = """#!/usr/bin/env python3
import pathlib, sys
args = sys.argv[1:]
src, dst = pathlib.Path(args[0]), pathlib.Path(args[1])
p = {args[i + 1]: args[i + 2] for i in range(len(args)) if args[i] == "-p"}
name = src.stem
out = pathlib.Path(p["out_dir"])
extra = {"layerwise": ["results/layerwise_similarity.csv", "figures/layerwise_overlay.svg",
                       "figures/layerwise_correlation.svg", "figures/layerwise_jaccard.svg"],
         "lazy_regime": ["figures/lazy_regime_overlap.svg", "figures/lazy_regime_change.svg"], "obert_roadmap": ["figures/obert_roadmap.svg", "figures/obert_roadmap_layerwise.svg"],
         "findings": ["results/floors.csv", "results/budget.csv"], "translation": ["figures/translation_chrf.svg"]}.get(name, [])
for path in (dst, out / "results" / f"{name}.csv", out / "figures" / f"{name}_sparsity.svg",
             out / "figures" / f"{name}_layerwise.svg", pathlib.Path("results") / p["profile"] / name / "run.json",
             *[out / e for e in extra]):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{name} profile={p['profile']}\\n")
"""
SMC_STUB = """#!/usr/bin/env python3
import pathlib, sys
if sys.argv[1:3] == ["data", "check"]:
    print("all datasets ok")
elif sys.argv[1] == "report":
    out = pathlib.Path("outputs/report"); out.mkdir(parents=True, exist_ok=True)
    (out / "index.html").write_text("<html></html>")
"""


def sh(cmd: list[str], cwd: Path, env: dict) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))}\n{res.stdout}\n{res.stderr}"
    return res.stdout + res.stderr


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([\w-]+)'", output))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A scratch git + DVC repository holding the real pipeline files, fake data and stub commands."""
    root = tmp_path_factory.mktemp("pipeline")
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump({**params, "profile": "smoke"}))  # tests run the smoke profile
    shutil.copytree(ROOT / "params", root / "params")
    shutil.copytree(ROOT / "smc_lib", root / "smc_lib", ignore=shutil.ignore_patterns("__pycache__"))
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for dep in stage.get("deps", []):
            path = root / dep
            if dep.startswith("notebooks/"):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}")
            elif dep.startswith("data/"):
                (path).mkdir(parents=True, exist_ok=True)
                (path / "sample.txt").write_text(dep)
    bin_dir = root / ".stubs"
    bin_dir.mkdir()
    for name, text in (("papermill", PAPERMILL_STUB), ("smc", SMC_STUB)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (root / ".gitignore").write_text("/.stubs\n/outputs\n/results\n")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    sh(["git", "init", "-q"], root, env)
    sh([str(DVC), "init", "-q"], root, env)
    sh(["git", "add", "-A"], root, env)
    sh(["git", "commit", "-qm", "pipeline"], root, env)
    first = sh([str(DVC), "repro"], root, env)
    assert ran(first) == set(stages), first
    return root, env


def test_noop_repro_runs_nothing_quickly(repo):
    root, env = repo
    start = time.perf_counter()
    out = sh([str(DVC), "repro"], root, env)
    elapsed = time.perf_counter() - start
    assert ran(out) == set(), out
    assert elapsed < 10, f"no-op dvc repro took {elapsed:.1f}s"


def test_one_section_param_reruns_that_section_the_findings_and_the_report(repo):
    root, env = repo
    path = root / "params" / "smoke.yaml"
    prof = yaml.safe_load(path.read_text())
    for section in ("commonsense", "arithmetic"):
        prof[section].setdefault("notebook", {})["pipeline_test_knob"] = 1  # one new value in one section
        path.write_text(yaml.safe_dump(prof, sort_keys=False))
        expected = {section, "findings", "layerwise", "lazy_regime", "report"} | ({"obert_roadmap"} if section == "commonsense"
                                                                                else set())
        assert ran(sh([str(DVC), "repro"], root, env)) == expected


def test_profile_switch_is_one_command(repo):
    root, env = repo
    sh(["git", "add", "-A"], root, env)
    sh(["git", "commit", "-qm", "state"], root, env)
    out = sh([str(DVC), "exp", "run", "-S", "profile=paper"], root, env)
    assert {"arithmetic", "commonsense", "report"} <= ran(out), out
    assert yaml.safe_load((root / "params.yaml").read_text())["profile"] == "paper"
    assert "profile=paper" in (root / "outputs" / "results" / "arithmetic.csv").read_text()
