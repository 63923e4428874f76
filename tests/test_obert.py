"""oBERT math (Kurtic et al. 2022): block-Fisher inverse and the OBS update, against float64 numpy."""
import numpy as np
import pytest
import torch

from smc_lib.errors import SMCError
from smc_lib.linalg import spd_inverse_
from smc_lib.methods.obert import BlockFisher, check_block_size, fisher_inverse, obert_scores, obs_update


def _reference_inverse(grads: np.ndarray, block: int, damping: float) -> np.ndarray:
    m, d = grads.shape
    g = grads.astype(np.float64).reshape(m, d // block, block)
    out = []
    for b in range(d // block):
        f = damping * np.eye(block) + g[:, b].T @ g[:, b] / m
        out.append(np.linalg.inv(f))
    return np.stack(out)


@pytest.mark.parametrize("m,block,damping", [(64, 10, 1e-7), (128, 50, 1e-7), (32, 8, 1e-3)])
def test_fisher_inverse_matches_float64_per_block(m, block, damping):
    gen = torch.Generator().manual_seed(m + block)
    grads = torch.randn(m, block * 12, generator=gen) * 0.1
    ours = fisher_inverse(grads, block, damping, chunk=5).double().numpy()   # several chunks
    ref = _reference_inverse(grads.numpy(), block, damping)
    err = np.linalg.norm(ours - ref, axis=(1, 2)) / np.linalg.norm(ref, axis=(1, 2))
    assert err.max() <= 1e-4


def test_streaming_accumulation_equals_one_batch():
    grads = torch.randn(40, 60, generator=torch.Generator().manual_seed(1))
    a = BlockFisher(60, 6)
    for lo in range(0, 40, 7):
        a.add(grads[lo:lo + 7])
    assert a.count == 40
    torch.testing.assert_close(a.inverse(1e-4), fisher_inverse(grads, 6, 1e-4))


def _closed_form(finv: np.ndarray, w: np.ndarray, pruned: np.ndarray) -> np.ndarray:
    P = np.flatnonzero(pruned)
    return -finv[:, P] @ np.linalg.solve(finv[np.ix_(P, P)], w[P])


def test_obs_update_equals_closed_form_and_zeroes_the_pruned():
    rng = np.random.default_rng(0)
    nb, b = 5, 8
    grads = torch.from_numpy(rng.normal(size=(64, nb * b)).astype(np.float32))
    finv = fisher_inverse(grads, b, 1e-3)
    w = torch.from_numpy(rng.normal(size=(nb, b)).astype(np.float32))
    pruned = torch.from_numpy(rng.random((nb, b)) < 0.4)
    pruned[0] = False                       # a block with nothing pruned: no update
    pruned[1] = True                        # a block pruned entirely: every weight goes to 0
    delta = obs_update(w, finv, pruned).numpy()
    f = finv.double().numpy()
    for i in range(nb):
        expected = _closed_form(f[i], w[i].double().numpy(), pruned[i].numpy()) if pruned[i].any() else 0.0
        np.testing.assert_allclose(delta[i], expected, rtol=1e-4, atol=1e-5)
    after = (w + torch.from_numpy(delta)).numpy()
    np.testing.assert_allclose(after[pruned.numpy()], 0.0, atol=1e-5)
    np.testing.assert_allclose(after[1], 0.0, atol=1e-5)
    assert np.all(delta[0] == 0)


def test_obs_update_lowers_the_quadratic_loss_versus_plain_pruning():
    rng = np.random.default_rng(3)
    grads = torch.from_numpy(rng.normal(size=(256, 20)).astype(np.float32)) * torch.linspace(0.1, 2, 20)
    finv = fisher_inverse(grads, 20, 1e-4)
    f = np.linalg.inv(finv[0].double().numpy())
    w = torch.from_numpy(rng.normal(size=20).astype(np.float32))
    pruned = torch.zeros(20, dtype=torch.bool)
    pruned[:6] = True
    delta = obs_update(w, finv, pruned).double().numpy()
    plain = -(w.double().numpy() * pruned.numpy())
    assert delta @ f @ delta < plain @ f @ plain


def test_obert_scores_are_w2_over_2_diag_finv():
    grads = torch.randn(30, 12, generator=torch.Generator().manual_seed(2))
    finv = fisher_inverse(grads, 4, 1e-2)
    w = torch.randn(3, 4)
    expected = w ** 2 / (2 * torch.diagonal(finv, dim1=1, dim2=2))
    torch.testing.assert_close(obert_scores(w, finv), expected)


def test_a_block_size_that_does_not_tile_pads_the_parameter():
    """B = 50 on a 384-wide layer (MiniLM; 1024 for RoBERTa-large) pads the last block with zeros, as SparseML
    does: the real weights' Fisher, saliency and OBS update are those of the same weights in a zero-padded
    parameter that the blocks tile."""
    params = {"a": torch.zeros(4, 96), "b": torch.zeros(384, 2)}
    check_block_size(params, 50)                                   # refused before padding
    for bad in (0, -4, 2.5):
        with pytest.raises(SMCError):
            check_block_size(params, bad)
    gen = torch.Generator().manual_seed(0)
    grads, w = torch.randn(16, 130, generator=gen), torch.randn(130, generator=gen)
    fisher = BlockFisher(130, 50)
    fisher.add(grads)
    finv = fisher.inverse(1e-3)
    assert finv.shape == (3, 50, 50)
    padded = fisher_inverse(torch.cat([grads, torch.zeros(16, 20)], 1), 50, 1e-3)
    torch.testing.assert_close(finv, padded)
    torch.testing.assert_close(obert_scores(w, finv), obert_scores(torch.cat([w, torch.zeros(20)]), padded)[:130])
    pruned = obert_scores(w, finv) < obert_scores(w, finv).median()
    upd = obs_update(w, finv, pruned)
    ref = obs_update(torch.cat([w, torch.zeros(20)]), padded, torch.cat([pruned, torch.zeros(20, dtype=torch.bool)]))
    assert upd.shape == w.shape
    torch.testing.assert_close(upd, ref[:130])


def test_fisher_gradients_of_pruned_weights_are_zero():
    """Kurtic et al. mask the gradients: a pruned weight is a constant 0. With the mask, its row and column
    of every block Fisher are zero (its F⁻¹ diagonal is 1/λ), so a second pruning step ranks it as gone."""
    from smc_lib.methods.obert import block_fishers
    from toy_task import ToyTask

    task = ToyTask(n_train=128, n_dev=32, n_test=32)
    model = task.build_model()
    params = {"fc1.weight": model.fc1.weight}
    mask = torch.rand(model.fc1.weight.shape, generator=torch.Generator().manual_seed(1)) > 0.5
    masked = block_fishers(task, model, params, 8, 8, block_size=16, progress=False,
                           masks={"fc1.weight": mask})["fc1.weight"]
    plain = block_fishers(task, model, params, 8, 8, block_size=16, progress=False)["fc1.weight"]
    off = (~mask).reshape(-1, 16)
    diag_masked = torch.diagonal(masked.matrix, dim1=1, dim2=2)
    assert diag_masked[off].abs().max() == 0 and torch.diagonal(plain.matrix, dim1=1, dim2=2)[off].abs().max() > 0
    assert (masked.matrix * off[:, :, None]).abs().max() == 0


def test_ill_conditioned_blocks_are_inverted_in_float64():
    gen = torch.Generator().manual_seed(5)
    grads = torch.randn(6, 20 * 4, generator=gen) * 10           # m = 6 < B = 20: rank 6, κ ~ 1e5
    f = torch.einsum("kni,knj->nij", grads.view(6, 4, 20), grads.view(6, 4, 20)) / 6 + 1e-2 * torch.eye(20)
    ref = torch.linalg.inv(f.double())                              # exact inverse of the same float32 blocks
    ours = spd_inverse_(f.clone())
    err = ((ours.double() - ref).norm(dim=(1, 2)) / ref.norm(dim=(1, 2))).max()
    assert err <= 1e-4
    plain = torch.cholesky_inverse(torch.linalg.cholesky(f)).double()  # what float32 alone would give
    assert ((plain - ref).norm(dim=(1, 2)) / ref.norm(dim=(1, 2))).max() > 10 * err


def test_float64_fisher_matches_reference_when_rank_deficient():
    grads = torch.randn(8, 100, generator=torch.Generator().manual_seed(6))
    ours = fisher_inverse(grads, 25, 1e-7, dtype=torch.float64).numpy()
    ref = _reference_inverse(grads.numpy(), 25, 1e-7)
    assert (np.linalg.norm(ours - ref, axis=(1, 2)) / np.linalg.norm(ref, axis=(1, 2))).max() <= 1e-4


def test_obert_prune_step_applies_the_obs_update_of_independent_fishers():
    from smc_lib.masks import MaskSet
    from smc_lib.methods import get_method
    from smc_lib.methods.scores import gradient_passes
    from toy_task import ToyTask
    from smc_lib.train import FitState, TrainConfig

    task = ToyTask(n_train=256, n_dev=32, n_test=32)
    model = task.build_model()
    cfg = TrainConfig(steps=10, batch_size=16, progress=False, device="cpu", seed=3)
    method = get_method("obert")(0.5, scope="encoder", block_size=16, grads=24, damping=1e-4)
    names = ["fc1.weight", "fc2.weight"]
    params = dict(model.named_parameters())
    masks = MaskSet.dense({n: params[n] for n in names})
    state = FitState(model, None, None, masks, 4, 10, cfg, task, torch.device("cpu"))
    before = {n: params[n].detach().clone() for n in names}
    grads = {n: [] for n in names}                 # the same m gradients, collected independently
    for _ in gradient_passes(task, model, 24, 16, seed=cfg.seed + state.step):
        for n in names:
            grads[n].append(params[n].grad.reshape(-1).clone())
    new = method.prune_step(state, 0.5)
    assert new.n_pruned() == round(0.5 * new.numel())
    kept_saliency, pruned_saliency = [], []
    for n in names:
        finv = fisher_inverse(torch.stack(grads[n]), 16, 1e-4).double().numpy()
        w = before[n].double().numpy().reshape(-1, 16)
        pruned = (~new.masks[n]).numpy().reshape(-1, 16)
        expected = w.copy()
        for b in range(len(w)):
            if pruned[b].any():
                expected[b] += _closed_form(finv[b], w[b], pruned[b])
        after = params[n].detach().double().numpy().reshape(-1, 16)
        np.testing.assert_allclose(after[~pruned], expected[~pruned], rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(after[pruned], 0.0, atol=1e-5)
        assert not np.allclose(after[~pruned], w[~pruned])       # the survivors moved
        saliency = w ** 2 / (2 * np.diagonal(finv, axis1=1, axis2=2))
        kept_saliency.append(saliency[~pruned].min())
        pruned_saliency.append(saliency[pruned].max())
    assert max(pruned_saliency) <= min(kept_saliency) * (1 + 1e-5)     # global ranking by w² / (2 [F⁻¹]ᵢᵢ)


def test_bench_fisher_smoke(capsys):
    from benchmarks import fisher

    out = fisher.main(["--d", "5000", "--m", "64", "--threads", "1"])
    assert out["rel_err"] <= 1e-4 and out["ours_s"] > 0 and out["sequential_s"] > 0 and out["plain_s"] > 0
    assert '"bench": "fisher"' in capsys.readouterr().out.strip().splitlines()[-1]
    with pytest.raises(SMCError):
        fisher.main(["--d", "5001"])


def test_obert_score_function_is_w2_over_2_diag_of_the_task_fisher():
    from smc_lib.methods.obert import obert
    from smc_lib.methods.scores import gradient_passes
    from toy_task import ToyTask

    task = ToyTask(n_train=128, n_dev=32, n_test=32)
    model = task.build_model()
    params = {"fc1.weight": model.fc1.weight}
    grads = []
    for _ in gradient_passes(task, model, 12, 8, seed=1):
        grads.append(model.fc1.weight.grad.reshape(-1).clone())
    expected = obert_scores(model.fc1.weight, fisher_inverse(torch.stack(grads), 16, 1e-5))
    torch.testing.assert_close(obert(task, model, params, grads=12, batch_size=8, block_size=16, damping=1e-5,
                                     seed=1)["fc1.weight"], expected)
    padded = obert(task, model, params, grads=2, block_size=50)            # 32 × 16 = 512: 11 blocks, padded
    assert padded["fc1.weight"].shape == model.fc1.weight.shape
