"""`smc data check` on real data, and on the corruptions a user actually meets."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smc_lib.datacheck import SPECS, check_all
from smc_lib.errors import SMCError
from smc_lib.readers import read_csv, read_fasta, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
MAWPS0 = "arithmetic/mawps/cv_mawps/fold0/train.csv"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="data/ not pulled (run `make data`)")


def smc(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smc_lib.cli", *args], cwd=cwd, capture_output=True, text=True)


@needs_data
def test_real_data_passes():
    rows = check_all(DATA)
    assert len(rows) == len(SPECS) and all(r.ok for r in rows), [r.problem for r in rows if not r.ok]


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    if not DATA.is_dir():
        pytest.skip("data/ not pulled (run `make data`)")
    dst = tmp_path / "data"
    shutil.copytree(DATA, dst)
    return dst


def test_truncated_mid_row_names_file_and_line(data_copy: Path):
    f = data_copy / MAWPS0
    text = f.read_bytes()
    cut = text.rfind(b"\n", 0, len(text) // 2) + 40          # 40 bytes into some row in the middle
    f.write_bytes(text[:cut])
    line = text[:cut].count(b"\n") + 1
    r = smc("data", "check", "--data-dir", str(data_copy))
    assert r.returncode == 1
    assert f"{f}:{line}:" in r.stderr, r.stderr
    assert "fields" in r.stderr or "malformed" in r.stderr


def test_deleted_file_is_named(data_copy: Path):
    victim = data_copy / "commonsense/winogrande/dev.jsonl"
    victim.unlink()
    r = smc("data", "check", "--data-dir", str(data_copy))
    assert r.returncode == 1
    assert f"missing data file {victim}" in r.stderr and "dvc pull" in r.stderr


def test_dropped_rows_change_the_count(data_copy: Path):
    f = data_copy / "commonsense/csqa/dev_rand_split.jsonl"
    lines = f.read_text().splitlines(keepends=True)
    f.write_text("".join(lines[:-3]))
    rows = {r.path: r for r in check_all(data_copy)}
    bad = rows["commonsense/csqa/dev_rand_split.jsonl"]
    assert not bad.ok and "expected 1221 records, found 1218" in bad.problem


def test_missing_data_dir_is_one_error(tmp_path: Path):
    with pytest.raises(SMCError, match="dvc pull"):
        check_all(tmp_path / "nope")


def test_readers_name_the_line(tmp_path: Path):
    (tmp_path / "a.csv").write_text("A,B\n1,2\n3\n")
    with pytest.raises(SMCError, match=r"a.csv:3: expected 2 fields"):
        read_csv(tmp_path / "a.csv", ["A"])
    (tmp_path / "b.jsonl").write_text('{"x": {"y": 1}}\n{"x": {}}\n')
    with pytest.raises(SMCError, match=r"b.jsonl:2: missing field 'x.y'"):
        read_jsonl(tmp_path / "b.jsonl", ["x.y"])
    (tmp_path / "c.fasta").write_text(">p1\nMKV\n>p2\nMK1V\n")
    with pytest.raises(SMCError, match=r"c.fasta:4: characters \['1'\]"):
        read_fasta(tmp_path / "c.fasta")


@pytest.mark.parametrize("args", [["frobnicate"], ["data", "check", "--bogus"], ["--nope"]])
def test_cli_usage_errors_exit_2(args):
    r = smc(*args)
    assert r.returncode == 2 and "Usage" in r.stderr


def test_cli_help_everywhere():
    for args in (["--help"], ["data", "check", "--help"], ["bench", "--help"], ["tasks", "--help"]):
        r = smc(*args)
        assert r.returncode == 0 and "Usage" in r.stdout
