"""A tiny random-init multiple-choice BERT runs every method timing (before, after, iterative, during)
end to end on real CommonsenseQA / WinoGrande rows, in seconds; the encoder scope keeps embeddings and
head dense (the oBERT recipe, Appendix C of the paper)."""
from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from smc_lib.methods import get_method
from smc_lib.methods.base import MethodContext
from smc_lib.scope import prunable
from smc_lib.tasks.commonsense import CommonsenseTask
from smc_lib.train import fit
from test_commonsense import DATA, needs_data

pytestmark = needs_data
TIMINGS = {"omp_before": "before", "omp_after": "after", "lth": "iterative", "gmp": "during"}
FAST = {"gmp": {"frequency": 2}}


@pytest.fixture(scope="module", params=["csqa", "winogrande"])
def task(request):
    return CommonsenseTask(request.param, "tiny-random", DATA, max_length=48, max_train=48, max_eval=24)


def _cfg(task, steps=6):
    return dataclasses.replace(task.default_train_config(), steps=steps, epochs=None, batch_size=8, lr=1e-3,
                               warmup_steps=0.2, device="cpu", progress=False)


@pytest.fixture(scope="module")
def dense(task):
    return fit(task, task.build_model(), _cfg(task)).model


def test_tiny_model_is_a_fresh_multiple_choice_bert(task):
    model = task.build_model()
    batch = next(iter(task.batches("dev", 4, shuffle=False, seed=0)))
    assert type(model).__name__ == "BertForMultipleChoice"
    assert task.logits(model, batch).shape == batch["input_ids"].shape[:2]
    assert set(task.evaluate(model)) == {"accuracy"}


@pytest.mark.parametrize("name", list(TIMINGS))
def test_each_timing_runs_end_to_end_in_seconds(task, dense, name):
    method = get_method(name)(0.488, scope="all", **FAST.get(name, {}))
    assert method.timing == TIMINGS[name]
    ctx = MethodContext(dense_model=lambda: copy.deepcopy(dense))
    result, masks = method.run(task, task.build_model(), _cfg(task), ctx)
    assert result.steps == _cfg(task).steps
    assert masks.sparsity() == pytest.approx(0.488, abs=1e-3)
    for name_, p in prunable(result.model, "all").items():  # pruned weights are exactly zero
        assert torch.count_nonzero(p.detach()[~masks.masks[name_].to(p.device)]) == 0
    assert 0.0 <= result.metrics["accuracy"] <= 100.0


def test_encoder_scope_keeps_embeddings_and_head_dense(task):
    model = task.build_model()
    params = prunable(model, "encoder", encoder_patterns=task.encoder_patterns)
    kinds = {n.split(".")[-2] for n in params}
    assert kinds == {"query", "key", "value", "dense"}
    assert len(params) == 6 * 2  # Q, K, V, O, FFN in, FFN out per layer (2 layers)
    assert not any("embeddings" in n or "classifier" in n or "pooler" in n for n in params)


def test_distillation_logits_have_one_score_per_choice(task, dense):
    batch = next(iter(task.batches("train", 4, shuffle=True, seed=1)))
    loss, logits = task.loss_and_logits(dense, batch)
    assert logits.shape == (4, batch["input_ids"].shape[1]) and loss.ndim == 0
    cfg = dataclasses.replace(_cfg(task, steps=2), distill={"weight": 0.5, "temperature": 2.0})
    assert fit(task, task.build_model(), cfg, teacher=copy.deepcopy(dense)).steps == 2


def test_the_packaged_minilm_loads_as_a_pretrained_multiple_choice_model():
    """The CPU profile's commonsense model through the real `from_pretrained` path: the body is the packaged
    MiniLM's own weights, the classifier is fresh and set by the seed alone, the record names the weights it
    loaded, and a CommonsenseQA batch gives one score per choice."""
    from safetensors.torch import load_file
    from smc_lib.tasks.commonsense import resolve_model

    task = CommonsenseTask("csqa", "minilm", DATA, max_length=48, max_train=8, max_eval=8, seed=3)
    a, b = task.build_model(), task.build_model()
    saved = load_file(f"{resolve_model('minilm')}/model.safetensors")
    body = {k.removeprefix("bert."): v for k, v in a.state_dict().items() if k.startswith("bert.")}
    shared = [k for k in saved if k in body]
    assert len(shared) >= 100 and all(torch.equal(body[k], saved[k]) for k in shared)
    assert torch.equal(a.classifier.weight, b.classifier.weight)               # seeded
    other = CommonsenseTask("csqa", "minilm", DATA, max_length=48, max_train=8, max_eval=8, seed=4).build_model()
    assert not torch.equal(a.classifier.weight, other.classifier.weight)
    assert task.record_info()["model"]                                         # provenance of the weights
    batch = next(iter(task.batches("dev", 4, shuffle=False, seed=0)))
    a.eval()
    with torch.no_grad():
        assert task.logits(a, batch).shape == (4, 5)
