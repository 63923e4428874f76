# SMC-Bench. The two commands: `make repro` (set up, pull data, rebuild every figure and the report)
# and `make test` (set up, pull data, run the test suite).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONHASHSEED := 0

.PHONY: setup data repro test test-slow lab report browser bench clean-outputs

setup: $(STAMP)

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build. Then the pinned set, with every
# transitive dependency held by requirements.lock. Re-runs only when pyproject.toml or the lock change.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip==25.3
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

data: $(STAMP)
	$(BIN)/dvc pull -q data.dvc

repro: data
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

report: $(STAMP)
	$(BIN)/smc report

test: data browser
	$(BIN)/python -m pytest -q

test-slow: data
	$(BIN)/python -m pytest -q -m slow

# --no-browser: works without a display; --allow-root: Jupyter refuses root otherwise (containers, CI boxes).
# LAB_ARGS: more options, e.g. LAB_ARGS="--port=8899 --ServerApp.token=secret".
lab: data
	$(BIN)/jupyter lab --notebook-dir=notebooks --no-browser $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) $(LAB_ARGS)

# Headless Chromium for the report's browser test (Debian packages).
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

bench: $(STAMP)
	$(BIN)/smc bench prune
	$(BIN)/smc bench step
	$(BIN)/smc bench fisher
	$(BIN)/smc bench gts
