"""Score functions: magnitude, seeded random, and SNIP |ḡ ⊙ w| (Lee et al. 2019) against a numpy backprop."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from smc_lib.errors import SMCError
from smc_lib.methods import scores


class TinyTask:
    """Six features → three classes; fixed data, batches shuffled by `seed`."""

    name = "tiny"

    def __init__(self, n=20):
        g = torch.Generator().manual_seed(7)
        self.x = torch.randn(n, 6, generator=g)
        self.y = torch.randint(3, (n,), generator=g)

    def batches(self, split, batch_size, shuffle=False, seed=0):
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(seed))
        for i in range(0, len(order), batch_size):
            sel = order[i:i + batch_size]
            yield {"x": self.x[sel], "y": self.y[sel]}

    def loss(self, model, batch):
        return F.cross_entropy(model(batch["x"]), batch["y"])


def _net():
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(6, 5, bias=False), nn.Tanh(), nn.Linear(5, 3, bias=False))


def _numpy_grads(w1, w2, x, y):
    """Hand-written backprop of mean cross-entropy through x → tanh(x W1ᵀ) → · W2ᵀ."""
    a = np.tanh(x @ w1.T)
    z = a @ w2.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(3)[y]) / len(y)
    dh = (dz @ w2) * (1 - a ** 2)
    return dh.T @ x, dz.T @ a


@pytest.mark.parametrize("n_batches", [1, 3])
def test_snip_equals_numpy(n_batches):
    task, model = TinyTask(), _net()
    params = {"0.weight": model[0].weight, "2.weight": model[2].weight}
    ours = scores.snip(task, model, params, n_batches=n_batches, batch_size=8, seed=0)
    w1, w2 = (p.detach().double().numpy() for p in params.values())
    batches = list(task.batches("train", 8, True, 0)) + list(task.batches("train", 8, True, 1))  # epochs cycle
    g1, g2 = np.zeros_like(w1), np.zeros_like(w2)
    for b in batches[:n_batches]:
        d1, d2 = _numpy_grads(w1, w2, b["x"].double().numpy(), b["y"].numpy())
        g1, g2 = g1 + d1 / n_batches, g2 + d2 / n_batches
    np.testing.assert_allclose(ours["0.weight"].numpy(), np.abs(g1 * w1), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(ours["2.weight"].numpy(), np.abs(g2 * w2), rtol=1e-4, atol=1e-7)
    assert all(p.grad is None for p in model.parameters())          # leaves no gradients behind


def test_gradient_passes_cycle_epochs_and_restore_mode():
    task, model = TinyTask(n=10), _net()
    model.train()
    assert list(scores.gradient_passes(task, model, 5, batch_size=4)) == [0, 1, 2, 3, 4]   # 3 batches/epoch
    assert model.training
    with pytest.raises(SMCError):
        list(scores.gradient_passes(task, model, 0, batch_size=4))


def test_magnitude_and_random():
    params = {"a": torch.tensor([[-3.0, 1.0], [0.5, -0.0]]), "b": torch.randn(4, 5)}
    assert torch.equal(scores.magnitude(params)["a"], torch.tensor([[3.0, 1.0], [0.5, 0.0]]))
    r1, r2, r3 = scores.random(params, 0), scores.random(params, 0), scores.random(params, 1)
    assert all(torch.equal(r1[n], r2[n]) for n in params)
    assert not torch.equal(r1["b"], r3["b"])
    assert r1["b"].shape == (4, 5) and 0 <= float(r1["b"].min()) and float(r1["b"].max()) < 1
