"""`make lab` serves JupyterLab — as root and without a display — with the project's kernel."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "jupyter").exists(), reason="no .venv (run `make setup`)")
def test_make_lab_serves_the_projects_kernel():
    port, token = _free_port(), secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS=--port={port} --ServerApp.ip=127.0.0.1 "
                             f"--IdentityProvider.token={token}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, specs = time.monotonic() + 90, None
        while time.monotonic() < deadline and specs is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs?token={token}", timeout=5) as r:
                    specs = json.load(r)
            except OSError:
                assert proc.poll() is None, "make lab exited before serving"
                time.sleep(1)
        assert specs is not None, "JupyterLab did not answer within 90 s"
        spec = specs["kernelspecs"]["python3"]["spec"]
        assert Path(spec["argv"][0]).resolve().is_relative_to((ROOT / ".venv").resolve()) or \
            str(ROOT / ".venv") in spec["argv"][0] or spec["argv"][0] == "python", spec
        with pytest.raises(urllib.error.HTTPError):              # the token is required
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs", timeout=5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
