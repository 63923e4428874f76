"""The CPU fast paths against their plain-torch references, and the one switch that turns them off."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from smc_lib.runtime import FAST_PATHS_ENV, fast_paths


@pytest.fixture(autouse=True)
def fast_by_default(monkeypatch):
    """Each test starts with the fast paths on, whatever the suite runs under (SMC_FAST_PATHS=0 too)."""
    monkeypatch.setenv(FAST_PATHS_ENV, "1")


@pytest.fixture
def plain(monkeypatch):
    monkeypatch.setenv(FAST_PATHS_ENV, "0")
    assert not fast_paths()


def test_gru_fast_path_matches_its_reference_and_the_switch_selects_it(monkeypatch):
    from smc_lib.tasks.arithmetic import rnn

    torch.manual_seed(0)
    layer = rnn.GRULayer(6, 5).double()
    x = torch.randn(7, 3, 6, dtype=torch.float64, requires_grad=True)
    valid = torch.ones(7, 3, dtype=torch.bool)
    valid[5:, 1] = False
    fast = layer(x, valid)
    fast.sum().backward()
    g_fast = [p.grad.clone() for p in (x, *layer.parameters())]
    for p in (x, *layer.parameters()):
        p.grad = None
    calls, real = [], rnn.gru_reference
    monkeypatch.setenv(FAST_PATHS_ENV, "0")
    monkeypatch.setattr(rnn, "gru_reference", lambda *a: calls.append(1) or real(*a))
    ref = layer(x, valid)
    ref.sum().backward()
    assert calls, "SMC_FAST_PATHS=0 must run the plain reference"
    torch.testing.assert_close(fast, ref)
    for a, b in zip(g_fast, [p.grad for p in (x, *layer.parameters())]):
        torch.testing.assert_close(a, b)


def test_gru_on_cuda_is_torchs_kernel_and_matches_the_reference(monkeypatch):
    """CUDA dispatches to `nn.GRU` (cuDNN); the same fused path, run here on CPU, equals the reference on every
    valid step, gradients included."""
    from smc_lib.tasks.arithmetic import rnn

    assert rnn.gru_path(torch.device("cuda")) == "fused"
    assert rnn.gru_path(torch.device("cpu")) == "fast"
    monkeypatch.setenv(FAST_PATHS_ENV, "0")
    assert rnn.gru_path(torch.device("cpu")) == "reference" and rnn.gru_path(torch.device("cuda")) == "fused"
    torch.manual_seed(0)
    layer = rnn.GRULayer(6, 5).double()
    x = torch.randn(7, 3, 6, dtype=torch.float64, requires_grad=True)
    valid = torch.ones(7, 3, dtype=torch.bool)
    valid[4:, 2] = False
    params = (layer.weight_ih, layer.weight_hh, layer.bias_ih, layer.bias_hh)
    outs, grads = [], []
    for fn in (rnn.gru_fused, rnn.gru_reference):
        out = fn(x, valid, *params)
        out.pow(2).sum().backward()
        outs.append(out)
        grads.append([p.grad.clone() for p in (x, *params)])
        for p in (x, *params):
            p.grad = None
    torch.testing.assert_close(outs[0], outs[1])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_mask_zeroing_paths_agree(plain, monkeypatch):
    from smc_lib.masks import zero_pruned

    gen = torch.Generator().manual_seed(1)
    w = torch.randn(300, 700, generator=gen)
    m = torch.rand(300, 700, generator=gen) > 0.5
    a = w.clone()
    zero_pruned([a], [m])                                  # plain: torch._foreach_mul_
    monkeypatch.setenv(FAST_PATHS_ENV, "1")
    b = w.clone()
    zero_pruned([b], [m])                                  # fast: float bits through NumPy
    assert torch.equal(a, b) and torch.equal(b[~m], torch.zeros(int((~m).sum())))


def test_fisher_inverse_paths_agree(monkeypatch):
    from smc_lib.methods.obert import fisher_inverse

    grads = torch.randn(64, 50 * 40, generator=torch.Generator().manual_seed(2))
    fast = fisher_inverse(grads, 50, 1e-4)
    monkeypatch.setenv(FAST_PATHS_ENV, "0")
    plain = fisher_inverse(grads, 50, 1e-4)
    rel = ((fast.double() - plain.double()).norm(dim=(1, 2)) / plain.double().norm(dim=(1, 2))).max()
    assert rel < 1e-4


def test_the_switch_enters_the_run_key_only_when_off(monkeypatch):
    from smc_lib.runs import RunConfig

    cfg = RunConfig(task="toy", dataset="toy", model="toy", method="dense", sparsity=0.0, device="cpu",
                    task_params={"n_train": 32, "n_dev": 8, "n_test": 8}, train={"steps": 2})
    on = cfg.key()
    assert "fast_paths" not in cfg.identity()["resolved"]            # published keys are unchanged
    monkeypatch.setenv(FAST_PATHS_ENV, "0")
    assert cfg.key() != on and cfg.identity()["resolved"]["fast_paths"] is False


def test_tree_decoder_gradients_without_the_tape_match(monkeypatch):
    """LinearTape and the skinny (W xᵀ)ᵀ product on vs off (plain F.linear and autograd): the same GTS gradients
    up to summation order. Dropout off: it draws its mask in its input's memory order, and the skinny product
    returns a transposed view, so in training the two paths drop different (equally random) units."""
    from smc_lib.tasks.arithmetic.task import ArithmeticTask
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data"
    if not (data / "arithmetic").is_dir():
        pytest.skip("data/ not pulled")
    task = ArithmeticTask("mawps", "gts", data, embedder="random", hidden=16, embedding_dim=16, max_train=8, max_eval=4)
    batch = next(task.batches("train", 4))

    def grads():
        model = task.build_model().double()
        model.eval()
        torch.manual_seed(0)
        task.loss(model, batch).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    fast = grads()
    monkeypatch.setenv(FAST_PATHS_ENV, "0")
    plain = grads()
    assert fast.keys() == plain.keys()
    for n in fast:
        np.testing.assert_allclose(fast[n].numpy(), plain[n].numpy(), rtol=1e-6, atol=1e-9, err_msg=n)
