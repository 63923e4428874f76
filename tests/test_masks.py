"""MaskSet: exact counts, deterministic ties, every selection path agrees with a stable sort, enforcement."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from smc_lib import selection
from smc_lib.errors import SMCError
from smc_lib.masks import MaskSet
from smc_lib.scope import prunable


def reference_masks(scores: dict, sparsity: float, transform=None, keep=None) -> dict:
    """Independent definition: prune the round(s*n) lowest (score, flat index) over the concatenation."""
    flat = []
    for n, v in scores.items():
        v = (transform(v) if transform else v).double().reshape(-1)
        if keep is not None:
            v = v.masked_fill(~keep[n].reshape(-1), -math.inf)
        flat.append(v)
    allv = torch.cat(flat)
    k = round(sparsity * allv.numel())
    keep_flat = torch.ones(allv.numel(), dtype=torch.bool)
    keep_flat[allv.sort(stable=True).indices[:k]] = False
    out, o = {}, 0
    for n, v in scores.items():
        out[n] = keep_flat[o:o + v.numel()].view(v.shape)
        o += v.numel()
    return out


@pytest.fixture(params=["direct", "sampled", "radix"])
def path(request, monkeypatch):
    """Force each selection path on small inputs (the sampled/radix paths normally start at 1 M scores)."""
    if request.param != "direct":
        monkeypatch.setattr(selection, "DIRECT_MAX", 0)
        monkeypatch.setattr(selection, "CHUNK", 97)            # many chunks, odd size
    if request.param == "sampled":
        monkeypatch.setattr(selection, "SAMPLE", 64)
    if request.param == "radix":
        monkeypatch.setattr(selection, "SAMPLE", 0)
    return request.param


def _scores(seed: int, kind: str, dtype=torch.float32) -> dict:
    g = torch.Generator().manual_seed(seed)
    shapes = [(13, 7), (300,), (5, 4, 3), (1, 1)]
    if kind == "ties":                                   # integer-valued: massive ties everywhere
        return {f"p{i}": torch.randint(-2, 3, s, generator=g).to(dtype) for i, s in enumerate(shapes)}
    if kind == "zeros":                                  # already half-pruned weights: a block of exact zeros
        out = {f"p{i}": torch.randn(s, generator=g).to(dtype) for i, s in enumerate(shapes)}
        out["p1"][:200] = 0.0
        return out
    return {f"p{i}": torch.randn(s, generator=g).to(dtype) for i, s in enumerate(shapes)}


@pytest.mark.parametrize("kind", ["normal", "ties", "zeros"])
@pytest.mark.parametrize("sparsity", [0.0, 0.2, 0.5, 0.7311, 0.99])
@pytest.mark.parametrize("transform", [None, torch.abs])
def test_global_exact_and_equal_to_reference(path, kind, sparsity, transform):
    scores = _scores(1, kind)
    masks = MaskSet.from_scores(scores, sparsity, transform=transform)
    n = sum(v.numel() for v in scores.values())
    assert masks.n_pruned() == round(sparsity * n)
    ref = reference_masks(scores, sparsity, transform)
    for name in scores:
        assert torch.equal(masks[name], ref[name]), name


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.9])
def test_layerwise_exact_per_param(path, sparsity):
    scores = _scores(2, "ties")
    masks = MaskSet.from_scores(scores, sparsity, layerwise=True)
    for name, v in scores.items():
        assert v.numel() - int(masks[name].sum()) == round(sparsity * v.numel())
        assert torch.equal(masks[name], reference_masks({name: v}, sparsity)[name])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes(path, dtype):
    scores = _scores(3, "normal", dtype)
    masks = MaskSet.from_scores(scores, 0.4)
    ref = reference_masks(scores, 0.4)
    assert all(torch.equal(masks[n], ref[n]) for n in scores)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 400), min_size=1, max_size=5), sparsity=st.floats(0.0, 0.999),
       seed=st.integers(0, 10_000), levels=st.sampled_from([3, 50, 0]))
def test_property_exact_count_and_order(sizes, sparsity, seed, levels):
    """Any sizes, any sparsity, with or without ties: exact count, and nothing kept scores below anything pruned."""
    g = torch.Generator().manual_seed(seed)
    scores = {f"w{i}": (torch.randint(levels, (s,), generator=g).float() if levels else torch.randn(s, generator=g))
              for i, s in enumerate(sizes)}
    for direct_max, sample in ((1 << 20, 1 << 18), (0, 32), (0, 0)):
        selection.DIRECT_MAX, selection.SAMPLE, selection.CHUNK = direct_max, sample, 61
        try:
            masks = MaskSet.from_scores(scores, sparsity)
        finally:
            selection.DIRECT_MAX, selection.SAMPLE, selection.CHUNK = 1 << 20, 1 << 18, 1 << 20
        n = sum(sizes)
        assert masks.n_pruned() == round(sparsity * n)
        kept = torch.cat([scores[k][masks[k]] for k in scores])
        pruned = torch.cat([scores[k][~masks[k]] for k in scores])
        if kept.numel() and pruned.numel():
            assert pruned.max() <= kept.min()


def test_keep_stays_pruned_and_counts_exact(path):
    scores = _scores(4, "normal")
    first = MaskSet.from_scores(scores, 0.2)
    new_scores = _scores(5, "normal")                   # different scores: without `keep` some would revive
    second = MaskSet.from_scores(new_scores, 0.36, keep=first, transform=torch.abs)
    n = first.numel()
    assert second.n_pruned() == round(0.36 * n)
    for name in scores:
        assert not (second[name] & ~first[name]).any()
    ref = reference_masks(new_scores, 0.36, torch.abs, keep=first.masks)
    assert all(torch.equal(second[k], ref[k]) for k in scores)


def test_keep_below_current_sparsity_is_an_error():
    scores = _scores(4, "normal")
    with pytest.raises(SMCError, match="cannot be revived"):
        MaskSet.from_scores(scores, 0.1, keep=MaskSet.from_scores(scores, 0.5))


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "half", None])
def test_bad_sparsity(bad):
    with pytest.raises(SMCError, match="sparsity"):
        MaskSet.from_scores(_scores(0, "normal"), bad)


def test_nan_scores_are_an_error(path):
    scores = _scores(0, "normal")
    scores["p1"][7] = float("nan")
    with pytest.raises(SMCError, match="NaN"):
        MaskSet.from_scores(scores, 0.5)


def test_same_seed_same_masks(toy_task):
    def masks_for(seed):
        torch.manual_seed(seed)
        model = toy_task.build_model()
        scores = {n: torch.rand(p.shape) * p.detach().abs() for n, p in prunable(model).items()}
        return MaskSet.from_scores(scores, 0.6)
    a, b, c = masks_for(0), masks_for(0), masks_for(1)
    assert all(torch.equal(a[n], b[n]) for n in a.names())
    assert not all(torch.equal(a[n], c[n]) for n in a.names())


@pytest.mark.parametrize("scope", ["all", "encoder"])
@pytest.mark.parametrize("sparsity", [0.3, 0.8])
@pytest.mark.parametrize("layerwise", [False, True])
def test_pruned_weights_exactly_zero_after_adamw_steps(tiny_bert, scope, sparsity, layerwise):
    """20 AdamW steps with weight decay: the Adam update of a pruned weight is nonzero, enforcement undoes it."""
    model = tiny_bert
    params = prunable(model, scope)
    masks = MaskSet.from_scores(params, sparsity, layerwise=layerwise, transform=torch.abs)
    masks.apply(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    masks.attach(model, opt)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        ids = torch.randint(101, (2, 3, 8), generator=g)
        loss = model(input_ids=ids, labels=torch.randint(3, (2,), generator=g)).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        masks.enforce()
        for n, p in params.items():
            assert (p[~masks[n]] == 0.0).all(), n
    kept_changed = any((p[masks[n]] != 0).any() for n, p in params.items())
    assert kept_changed
    assert masks.sparsity() == pytest.approx(sparsity, abs=1e-3)


def test_clear_optimizer_state_zeroes_moments(toy_model):
    params = prunable(toy_model)
    opt = torch.optim.AdamW(toy_model.parameters(), lr=1e-2)
    toy_model(torch.randint(32, (4, 8))).sum().backward()
    opt.step()
    masks = MaskSet.from_scores(params, 0.5, transform=torch.abs)
    masks.attach(toy_model, opt)
    masks.clear_optimizer_state(opt)
    for n, p in params.items():
        for key in ("exp_avg", "exp_avg_sq"):
            moment = opt.state[p][key]
            assert (moment[~masks[n]] == 0).all()
            assert (moment[masks[n]] != 0).any()
    name = masks.names()[0]
    changed = {name: torch.zeros_like(masks[name])}
    changed[name].view(-1)[:3] = True
    before = opt.state[params[name]]["exp_avg"].clone()
    masks.clear_optimizer_state(changed=changed)
    after = opt.state[params[name]]["exp_avg"]
    assert (after.view(-1)[:3] == 0).all() and torch.equal(after.view(-1)[3:], before.view(-1)[3:])


def test_update_clears_moments_of_changed_weights(toy_model):
    params = prunable(toy_model)
    opt = torch.optim.Adam(toy_model.parameters(), lr=1e-2)
    toy_model(torch.randint(32, (4, 8))).sum().backward()
    opt.step()
    masks = MaskSet.dense(params)
    masks.attach(toy_model, opt)
    new = MaskSet.from_scores(params, 0.5, transform=torch.abs)
    masks.update(new.masks)
    for n, p in params.items():
        assert torch.equal(masks[n], new[n])
        assert (opt.state[p]["exp_avg"][~new[n]] == 0).all()


def test_layerwise_table(tiny_bert):
    masks = MaskSet.from_scores(prunable(tiny_bert), 0.5, transform=torch.abs)
    table = masks.layerwise()
    assert list(table.columns) == ["param", "layer", "kind", "numel", "sparsity"]
    assert set(table.kind) == {"embedding", "attention", "ffn", "head"}
    row = table.set_index("param")
    assert row.loc["bert.embeddings.word_embeddings.weight", "kind"] == "embedding"
    assert row.loc["bert.encoder.layer.1.attention.self.query.weight", "kind"] == "attention"
    assert row.loc["bert.encoder.layer.1.attention.self.query.weight", "layer"] == 1
    assert row.loc["bert.encoder.layer.0.attention.output.dense.weight", "kind"] == "attention"
    assert row.loc["bert.encoder.layer.0.intermediate.dense.weight", "kind"] == "ffn"
    assert row.loc["bert.encoder.layer.0.output.dense.weight", "kind"] == "ffn"
    assert row.loc["classifier.weight", "kind"] == "head"
    assert row.loc["classifier.weight", "layer"] == -1
    assert (table.numel * table.sparsity).sum() == pytest.approx(masks.n_pruned())


def test_state_dict_copy_and_errors(toy_model):
    masks = MaskSet.from_scores(prunable(toy_model), 0.5, transform=torch.abs)
    clone = masks.copy()
    clone.masks["fc1.weight"][:] = True
    assert not torch.equal(clone["fc1.weight"], masks["fc1.weight"])
    restored = MaskSet.dense(prunable(toy_model))
    restored.load_state_dict(masks.state_dict())
    assert all(torch.equal(restored[n], masks[n]) for n in masks.names())
    with pytest.raises(SMCError, match="another scope"):
        restored.load_state_dict({"nope": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(SMCError, match="attach"):
        MaskSet.dense(prunable(toy_model)).enforce()
    with pytest.raises(SMCError, match="no parameter"):
        MaskSet({"missing.weight": torch.ones(2, 2, dtype=torch.bool)}).apply(toy_model)


def test_apply_zeroes_exactly_the_pruned(toy_model):
    params = prunable(toy_model)
    masks = MaskSet.from_scores(params, 0.75, transform=torch.abs)
    before = {n: p.detach().clone() for n, p in params.items()}
    masks.apply(toy_model)
    for n, p in params.items():
        assert (p[~masks[n]] == 0).all()
        assert torch.equal(p[masks[n]], before[n][masks[n]])
