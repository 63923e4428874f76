"""environment.yml (GPU hosts) and requirements.lock (make setup) install the same pinned set."""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_resolves_from_channels_that_exist_and_uses_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]            # the pytorch channel stopped at 2.5
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-c requirements.lock" in pip and "-e .[test]" in pip    # the library, its IF1 extra and the tests
    pins = {line.split("==")[0].lower(): line.split("==")[1] for line in pip if "==" in line}
    assert pins == {"torch": "2.13.0"}                   # nothing pinned twice, so nothing can drift
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile and "-c requirements.lock -e '.[test]'" in makefile


def test_the_lock_pins_torch_without_a_build_tag():
    """`torch==2.13.0` is met by the CPU wheel (2.13.0+cpu, PEP 440 ignores the local label) and by PyPI's
    CUDA wheel, so `make setup` and environment.yml share one lock."""
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    assert "torch==2.13.0" in lock and not any(line.startswith("torch==") and "+" in line for line in lock)
