"""Every registered method on the toy task: exact sparsity, exact zeros, determinism, and each method's
defining property (RigL constant sparsity, GMP at target from 80 %, LTH rounds 1 - 0.8^k)."""
import copy

import pytest
import torch

from smc_lib.errors import SMCError
from smc_lib.masks import MaskSet
from smc_lib.methods import get_method, method_names
from smc_lib.methods.base import MethodContext
from smc_lib.scope import SCOPES, prunable
from toy_task import ToyTask
from smc_lib.train import TrainConfig, fit

FAST = {"obert": {"block_size": 16, "grads": 8}, "obert_imp": {"block_size": 16, "grads": 8}, "gmp": {"frequency": 2}, "random_rigl": {"every": 2},
        "omp_rigl": {"every": 2}, "snip_rigl": {"every": 2}}
SCOPE_KWARGS = {"all": {}, "encoder": {"encoder_patterns": ToyTask.encoder_patterns},
                "custom": {"include": [r"^fc", r"^head"], "exclude": [r"fc2"]}}


def _cfg(steps: int = 20, **kw) -> TrainConfig:
    return TrainConfig(**{"steps": steps, "batch_size": 32, "lr": 5e-2, "weight_decay": 0.1, "optimizer": "adamw",
                          "progress": False, "device": "cpu", **kw})


@pytest.fixture(scope="module")
def task():
    return ToyTask(n_train=512, n_dev=64, n_test=64)


@pytest.fixture(scope="module")
def dense(task):
    return fit(task, task.build_model(), _cfg()).model


def _ctx(dense, scope="all"):
    return MethodContext(dense_model=lambda: copy.deepcopy(dense), scope_kwargs=SCOPE_KWARGS[scope])


def _run(name, task, dense, sparsity, scope="all", layerwise=False, cfg=None, **opts):
    method = get_method(name)(sparsity, scope=scope, layerwise=layerwise, **{**FAST.get(name, {}), **opts})
    result, masks = method.run(task, task.build_model(), cfg or _cfg(), _ctx(dense, scope))
    return method, result, masks


def _sparsities(name, scope):
    return [0.0] if name == "dense" else [0.2, 0.67] if scope == "all" else [0.67]


CASES = [(m, scope, s) for m in method_names() for scope in SCOPES for s in _sparsities(m, scope)]


@pytest.mark.parametrize("name,scope,sparsity", CASES)
def test_exact_sparsity_and_exact_zeros_after_training(task, dense, name, scope, sparsity):
    _, result, masks = _run(name, task, dense, sparsity, scope)
    scope_params = prunable(task.build_model(), scope, **SCOPE_KWARGS[scope])
    assert masks.names() == list(scope_params)
    n = sum(p.numel() for p in scope_params.values())
    assert masks.n_pruned() == round(sparsity * n)
    params = dict(result.model.named_parameters())
    for pname, keep in masks.masks.items():
        assert torch.all(params[pname].detach()[~keep.to(params[pname].device)] == 0.0), pname
    assert result.steps > 0 and "accuracy" in result.metrics


@pytest.mark.parametrize("name", [m for m in method_names() if m != "dense"])
def test_layerwise_sparsity_is_exact_per_layer(task, dense, name):
    _, _, masks = _run(name, task, dense, 0.6, layerwise=True)
    for pname, keep in masks.masks.items():
        assert keep.numel() - int(keep.sum()) == round(0.6 * keep.numel()), pname


@pytest.mark.parametrize("name", method_names())
def test_same_seed_same_masks(task, dense, name):
    s = 0.0 if name == "dense" else 0.5
    a = _run(name, task, dense, s)[2]
    b = _run(name, task, dense, s)[2]
    assert all(torch.equal(a[n], b[n]) for n in a.names())


def test_random_masks_depend_on_the_seed(task, dense):
    a = _run("random_before", task, dense, 0.5, cfg=_cfg(seed=0))[2]
    b = _run("random_before", task, dense, 0.5, cfg=_cfg(seed=1))[2]
    assert not all(torch.equal(a[n], b[n]) for n in a.names())


class Recorder:
    """Test hook: per-step mask counts, and whether regrown weights and their Adam moments are zero."""

    def __init__(self):
        self.pruned, self.lr, self.changes, self.prev, self.grown_clean = [], [], 0, None, True

    def on_step_end(self, state):
        self.lr.append(state.optimizer.param_groups[0]["lr"])
        masks = {n: m.clone() for n, m in state.masks.masks.items()}
        self.pruned.append({n: m.numel() - int(m.sum()) for n, m in masks.items()})
        if self.prev is not None and any(not torch.equal(masks[n], self.prev[n]) for n in masks):
            self.changes += 1
            params = dict(state.model.named_parameters())
            for n, m in masks.items():
                grown = m & ~self.prev[n]
                moments = state.optimizer.state[params[n]]
                self.grown_clean &= bool(torch.all(params[n].detach()[grown] == 0.0))
                self.grown_clean &= bool(torch.all(moments["exp_avg"][grown] == 0.0))
        self.prev = masks


def _run_with_recorder(name, task, sparsity, cfg, **opts):
    method = get_method(name)(sparsity, **{**FAST.get(name, {}), **opts})
    model, ctx = task.build_model(), MethodContext()
    masks = method.initial_masks(task, model, cfg, ctx)
    start = masks.copy()
    rec = Recorder()
    hooks = method.hooks(task, model, cfg, ctx)
    result = fit(task, model, cfg, masks, hooks + [rec])
    return start, masks, rec, result, hooks


@pytest.mark.parametrize("name", ["random_rigl", "omp_rigl", "snip_rigl"])
def test_rigl_keeps_sparsity_constant_and_changes_the_mask(task, name):
    start, masks, rec, _, hooks = _run_with_recorder(name, task, 0.7, _cfg(40))
    assert all(step == rec.pruned[0] for step in rec.pruned)                 # every layer, every step
    assert rec.pruned[0] == {n: m.numel() - int(m.sum()) for n, m in start.masks.items()}
    assert rec.changes >= 3 and rec.grown_clean
    assert not all(torch.equal(start[n], masks[n]) for n in masks.names())
    last_update = max(hooks[0].updates)
    assert last_update < 0.75 * 40
    assert all(p == rec.pruned[-1] for p in rec.pruned[last_update:])


def test_gmp_is_exactly_at_target_from_80_percent_of_the_steps(task):
    total, s = 50, 0.8
    _, masks, rec, result, _ = _run_with_recorder("gmp", task, s, _cfg(total, eval_every=5, select_best=True),
                                                  frequency=3)
    n = masks.numel()
    counts = [sum(p.values()) for p in rec.pruned]                        # after steps 1..total
    t_end = round(0.8 * total)
    assert all(c == round(s * n) for c in counts[t_end - 1:])
    assert all(c < round(s * n) for c in counts[:t_end - 1])
    assert counts == sorted(counts) and counts[round(0.1 * total) - 1] == 0
    assert [h["mask_final"] for h in result.history] == [h["step"] >= t_end for h in result.history]
    assert result.best_step >= t_end


@pytest.mark.parametrize("target,rounds", [(0.2, 1), (1 - 0.8 ** 4, 4), (0.5, 4)])
def test_lth_round_k_has_sparsity_one_minus_0p8_to_the_k(task, dense, target, rounds):
    method, _, masks = _run("lth", task, dense, target, cfg=_cfg(10))
    n = masks.numel()
    assert len(method.rounds) == rounds
    for k, r in enumerate(method.rounds[:-1], 1):
        assert r["sparsity"] == round((1 - 0.8 ** k) * n) / n
    assert method.rounds[-1]["sparsity"] == masks.sparsity() == round(target * n) / n


@pytest.mark.parametrize("name,rewound", [("lth", True), ("lth_norewind", False)])
def test_lth_rewinds_to_the_pretrained_weights(task, dense, monkeypatch, name, rewound):
    method = get_method(name)(0.36)
    starts = []
    real_fit = type(method).fit

    def spy(self, task_, model, cfg, ctx, masks, hooks=(), tag="fit"):
        starts.append({n: p.detach().clone() for n, p in model.named_parameters()})
        return real_fit(self, task_, model, cfg, ctx, masks, hooks, tag)

    monkeypatch.setattr(type(method), "fit", spy)
    pretrained = dict(task.build_model().named_parameters())
    method.run(task, task.build_model(), _cfg(10), _ctx(dense))
    assert len(starts) == 2
    w0, w1 = starts[1]["fc1.weight"], pretrained["fc1.weight"].detach()
    kept = w0 != 0
    assert torch.equal(w0[kept], w1[kept]) == rewound


def test_lth_rewind_to_a_step(task, dense):
    method, _, masks = _run("lth", task, dense, 0.36, cfg=_cfg(10), rewind=3)
    assert [r["target"] for r in method.rounds] == [0.2, 0.36]
    with pytest.raises(SMCError, match="rewind step"):
        _run("lth", task, dense, 0.2, cfg=_cfg(10), rewind=50)


# ------------------------------------------------------------------------------------------- bad input
def _no_training(monkeypatch):
    import smc_lib.methods.base as base

    def refuse(*a, **k):
        raise AssertionError("training started before the input was checked")
    monkeypatch.setattr(base, "fit", refuse)


@pytest.mark.parametrize("make", [
    lambda: get_method("no_such_method"),
    lambda: get_method("gmp")(1.0),
    lambda: get_method("gmp")(-0.1),
    lambda: get_method("snip")("half"),
    lambda: get_method("omp_before")(0.5, scope="decoder"),
    lambda: get_method("omp_before")(0.5, block_size=16),
    lambda: get_method("dense")(0.5),
    lambda: get_method("lth")(0.5, rewind=-1),
    lambda: get_method("gmp")(0.5, start=0.9, end=0.5),
    lambda: get_method("random_rigl")(0.5, alpha=0.0),
    lambda: get_method("obert")(0.5, block_size=0),
    lambda: get_method("obert")(0.5, damping=0.0),
    lambda: get_method("obert_imp")(0.5, damping=0.0),        # oBERT's options hold inside IMP rounds too
    lambda: get_method("obert_imp")(0.5, grads=0),
    lambda: get_method("obert_imp")(0.5, fisher_dtype="float16"),
    lambda: get_method("obert_imp")(0.5, block_size=0),
])
def test_bad_options_raise_smc_error(make):
    with pytest.raises(SMCError):
        make()


def test_bad_block_size_and_empty_scope_fail_before_training(task, dense, monkeypatch):
    _no_training(monkeypatch)
    with pytest.raises(SMCError, match="block_size must be a positive integer"):
        get_method("obert")(0.5, block_size=0).run(task, task.build_model(), _cfg(), _ctx(dense))
    empty = MethodContext(scope_kwargs={"include": [r"^nothing$"]})
    with pytest.raises(SMCError, match="matches no weight"):
        get_method("gmp")(0.5, scope="custom").run(task, task.build_model(), _cfg(), empty)


def test_masks_are_masksets_over_the_scope(task, dense):
    _, _, masks = _run("omp_before", task, dense, 0.5, scope="encoder")
    assert isinstance(masks, MaskSet) and masks.names() == ["fc1.weight", "fc2.weight"]


@pytest.mark.parametrize("name", method_names())
def test_every_method_cites_its_paper(name):
    import sys

    from smc_lib.methods.base import TIMINGS

    cls = get_method(name)
    assert cls.name == name and cls.timing in TIMINGS and len(cls.paper) > 20
    assert "20" in sys.modules[cls.__module__].__doc__                  # the module docstring cites a year


def test_prune_api_prunes_in_place():
    from smc_lib.methods.base import prune

    task = ToyTask()
    model = task.build_model()
    masks = prune(model, 0.5, scope="encoder", encoder_patterns=ToyTask.encoder_patterns)
    assert masks.n_pruned() == round(0.5 * masks.numel()) and float((model.fc1.weight == 0).float().mean()) > 0.2
    snip = prune(task.build_model(), 0.3, criterion="snip", task=task)
    assert snip.n_pruned() == round(0.3 * snip.numel())
    with pytest.raises(SMCError):
        prune(task.build_model(), 0.3, criterion="snip")
    with pytest.raises(SMCError):
        prune(task.build_model(), 0.3, criterion="wanda")


def test_gmp_lr_rewind_and_distillation_from_the_dense_teacher(task, dense):
    cfg = _cfg(30, schedule="linear")
    start, masks, rec, _, hooks = _run_with_recorder("gmp", task, 0.5, cfg, frequency=4, lr_rewind=True)
    updates = sorted(t for t in hooks[0].updates if hooks[0].schedule.sparsity_at(t) > 0)
    assert len(updates) >= 3
    assert all(rec.lr[t - 1] == pytest.approx(cfg.lr) for t in updates)   # full LR right after each pruning
    assert sum(b > a for a, b in zip(rec.lr, rec.lr[1:])) >= 3            # and decaying in between
    cfg = _cfg(20, distill={"weight": 0.5, "temperature": 2.0})
    _, _, masks = _run("gmp", task, dense, 0.5, cfg=cfg)
    assert masks.n_pruned() == round(0.5 * masks.numel())
    with pytest.raises(SMCError, match="teacher"):
        get_method("gmp")(0.5).run(task, task.build_model(), cfg, MethodContext())


def test_obert_imp_prunes_by_obs_saliency_inside_rounds_with_lr_rewinding(task, dense, monkeypatch):
    """Appendix C.2: every round is a full fine-tuning (a fresh optimizer and schedule: LR rewinding) from the
    previous round's weights — not a weight rewind — after an oBERT step that moved the survivors (OBS)."""
    import smc_lib.methods.base as base

    starts = []
    real_fit = base.fit

    def recording(task_, model, cfg, **kw):
        starts.append({n: p.detach().clone() for n, p in model.named_parameters()})
        return real_fit(task_, model, cfg, **kw)

    monkeypatch.setattr(base, "fit", recording)
    method, result, masks = _run("obert_imp", task, dense, 0.36, scope="encoder")
    assert [r["target"] for r in method.rounds] == [0.2, 0.36] and len(starts) == 2
    assert masks.sparsity() == pytest.approx(0.36, abs=1e-3) and masks.names() == ["fc1.weight", "fc2.weight"]
    dense_w = dict(dense.named_parameters())
    kept = masks.masks["fc1.weight"]
    assert not torch.allclose(starts[0]["fc1.weight"][kept], dense_w["fc1.weight"].detach()[kept])   # OBS moved them
    assert not torch.allclose(starts[1]["fc1.weight"], starts[0]["fc1.weight"])          # round 2: round 1's weights
    for n in masks.names():
        assert (dict(result.model.named_parameters())[n][~masks.masks[n]] == 0).all()
