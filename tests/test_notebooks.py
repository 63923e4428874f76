"""Committed notebooks are clean (no outputs) and papermill-ready (a `parameters` cell), and the DVC
pipeline runs each of them with parameters it actually declares."""
from __future__ import annotations

import json

import ast
import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REQUIRED = {"profile", "data_dir", "reference_dir", "out_dir"}
SECTIONS = ("arithmetic", "commonsense", "protein", "translation")


def parameters(nb: nbformat.NotebookNode) -> set[str]:
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged `parameters` (papermill)"
    tree = ast.parse(cells[0].source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}


def notebook_stages() -> dict[str, dict]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: s for name, s in stages.items() if "papermill" in s["cmd"]}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_a_unique_id(path: Path):
    """nbformat 4.5 requires cell ids (a missing one is a warning today and an error in later nbformat)."""
    ids = [c.get("id") for c in json.loads(path.read_text())["cells"]]
    assert None not in ids and len(set(ids)) == len(ids)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_a_parameters_cell(path: Path):
    nb = nbformat.read(path, as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", []), "the first code cell holds the parameters"
    missing = REQUIRED - parameters(nb)
    assert not missing, f"{path.name}: parameters cell lacks {sorted(missing)}"


def test_every_notebook_stage_runs_a_committed_notebook_with_declared_parameters():
    stages = notebook_stages()
    assert {"arithmetic", "commonsense"} <= set(stages)
    for name, stage in stages.items():
        path = ROOT / f"notebooks/{name}.ipynb"
        assert path.exists(), f"dvc.yaml stage {name!r} runs {path.name}, which is not committed"
        passed = set(re.findall(r"-p (\w+) ", stage["cmd"]))
        assert passed <= parameters(nbformat.read(path, as_version=4)), f"{name}: papermill -p of an unknown name"
        assert f"notebooks/{name}.ipynb" in stage["deps"] and "smc_lib" in stage["deps"]
        assert f"outputs/notebooks/{name}.ipynb" in stage["outs"]
        records = [o[f"results/${{profile}}/{name}"] for o in stage["outs"]
                   if isinstance(o, dict) and f"results/${{profile}}/{name}" in o]
        if name in SECTIONS:     # a section's stage owns its published records (git, not the DVC cache)
            assert f"outputs/results/{name}.csv" in stage["outs"]
            assert records and records[0].get("persist") and records[0].get("cache") is False
            assert "train_missing" in parameters(nbformat.read(path, as_version=4))
        else:                    # an analysis reads them
            assert {f"results/${{profile}}/{s}" for s in SECTIONS} & set(stage["deps"])
