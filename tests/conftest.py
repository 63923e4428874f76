"""Shared test setup: offline, single-threaded, small models (a random tiny BERT, the toy task)."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# The test-only `toy` task (tests/toy_task.py) registers through the library's extension point; PYTHONPATH
# lets child processes (Ray workers, `python -c`) import it as well.
_TESTS = os.path.dirname(os.path.abspath(__file__))
os.environ["SMC_TASK_MODULES"] = "toy_task"
os.environ["PYTHONPATH"] = os.pathsep.join([_TESTS] + [p for p in [os.environ.get("PYTHONPATH")] if p])

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def toy_task():
    from smc_lib.tasks import get_task

    return get_task("toy")()


@pytest.fixture
def toy_model(toy_task):
    return toy_task.build_model()


def make_tiny_bert(layers: int = 2, seed: int = 0):
    """A randomly initialised BertForMultipleChoice with tiny sizes (no download)."""
    from transformers import BertConfig, BertForMultipleChoice

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=101, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32, type_vocab_size=2)
    return BertForMultipleChoice(cfg)


@pytest.fixture
def tiny_bert():
    return make_tiny_bert()


@pytest.fixture
def count_training(monkeypatch) -> list:
    """Every call of the one function that trains (smc_lib.runs._train), in order: its RunConfigs."""
    from smc_lib import runs

    calls: list = []
    real = runs._train

    def counted(cfg, store, data_dir):
        calls.append(cfg)
        return real(cfg, store, data_dir)

    monkeypatch.setattr(runs, "_train", counted)
    return calls
