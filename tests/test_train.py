"""train.fit on the toy task: determinism, resume, hooks, best-checkpoint gating, schedules, groups, KD."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from smc_lib.errors import SMCError
from smc_lib.masks import MaskSet
from smc_lib.scope import prunable
from smc_lib.train import (OPTIMIZERS, SCHEDULES, TrainConfig, build_optimizer, distill_loss, fit, lr_multiplier,
                           resolve_device, to_device)


def cfg(**kw) -> TrainConfig:
    base = dict(steps=24, batch_size=32, lr=5e-2, eval_every=8, warmup_steps=0.1, progress=False, device="cpu",
                weight_decay=0.01)
    return TrainConfig(**{**base, **kw})


def weights(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_toy_learns_quickly(toy_task):
    before = toy_task.evaluate(toy_task.build_model())["accuracy"]
    result = fit(toy_task, toy_task.build_model(), toy_task.default_train_config())
    assert result.metrics["accuracy"] > before + 20
    assert result.steps == 60 and [h["step"] for h in result.history] == [20, 40, 60]


def test_deterministic_under_seed(toy_task):
    a = fit(toy_task, toy_task.build_model(), cfg(seed=3))
    b = fit(toy_task, toy_task.build_model(), cfg(seed=3))
    c = fit(toy_task, toy_task.build_model(), cfg(seed=4))
    assert same(weights(a.model), weights(b.model)) and a.history == b.history
    assert not same(weights(a.model), weights(c.model))


class Crash:
    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, state):
        if state.step == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("masked", [False, True])
def test_resume_gives_the_same_weights(toy_task, tmp_path, masked):
    def run(hooks=(), ckpt=None):
        model = toy_task.build_model()
        masks = MaskSet.from_scores(prunable(model), 0.5, transform=torch.abs) if masked else None
        return fit(toy_task, model, cfg(steps=30, eval_every=7, select_best=False), masks=masks, hooks=hooks,
                   checkpoint=ckpt)
    full = run()
    ckpt = tmp_path / "fit.pt"
    with pytest.raises(KeyboardInterrupt):
        run([Crash(17)], ckpt)                          # last checkpoint at step 14
    assert ckpt.exists() and not list(tmp_path.glob("*.tmp*"))
    resumed = run((), ckpt)
    assert same(weights(full.model), weights(resumed.model))
    assert [h["step"] for h in resumed.history] == [h["step"] for h in full.history]
    again = run((), ckpt)                               # a finished checkpoint: nothing left to train
    assert same(weights(full.model), weights(again.model))


class Recorder:
    def __init__(self, final_from: int = 0):
        self.calls, self.final_from = [], final_from

    def on_fit_start(self, s):
        self.calls.append(("start", s.step))

    def after_backward(self, s):
        self.calls.append(("backward", s.step))
        assert all(p.grad is not None for p in s.model.parameters() if p.requires_grad)

    def on_step_end(self, s):
        self.calls.append(("step", s.step))

    def mask_is_final(self, s):
        return s.step >= self.final_from

    def on_fit_end(self, s):
        self.calls.append(("end", s.step))


def test_hook_order_and_steps(toy_task):
    rec = Recorder()
    fit(toy_task, toy_task.build_model(), cfg(steps=3, eval_every=None), hooks=[rec])
    assert rec.calls == [("start", 0), ("backward", 0), ("step", 1), ("backward", 1), ("step", 2),
                         ("backward", 2), ("step", 3), ("end", 3)]


def test_select_best_only_counts_final_masks(toy_task):
    free = fit(toy_task, toy_task.build_model(), cfg(steps=24, eval_every=4, lr=0.2, select_best=True))
    gated = fit(toy_task, toy_task.build_model(), cfg(steps=24, eval_every=4, lr=0.2, select_best=True),
                hooks=[Recorder(20)])
    assert gated.best_step >= 20
    final_evals = [h for h in gated.history if h["mask_final"]]
    assert [h["step"] for h in final_evals] == [20, 24]
    assert gated.metrics["accuracy"] == max(h["accuracy"] for h in final_evals)
    assert free.metrics["accuracy"] == max(h["accuracy"] for h in free.history)


class PruneMore:
    """Changes the mask inside the fit (like GMP) without calling enforce itself."""

    def on_step_end(self, s):
        if s.step == 5:
            params = prunable(s.model)
            new = MaskSet.from_scores(params, 0.7, keep=s.masks, transform=torch.abs)
            s.masks.update(new.masks)


def test_pruned_weights_zero_at_every_forward(toy_task):
    model = toy_task.build_model()
    masks = MaskSet.from_scores(prunable(model), 0.5, transform=torch.abs)
    seen = []

    def check(module, args):
        for n, p in prunable(module).items():
            assert (p[~masks[n]] == 0).all()
        seen.append(1)
    model.register_forward_pre_hook(check)
    fit(toy_task, model, cfg(steps=12, weight_decay=0.5), masks=masks, hooks=[PruneMore()])
    assert len(seen) > 12 and masks.sparsity() == pytest.approx(0.7, abs=1e-3)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedule_shapes(schedule):
    total, warm = 100, 10
    f = [lr_multiplier(schedule, s, total, warm) for s in range(total + 1)]
    assert all(0 <= x <= 1 + 1e-12 for x in f)
    peak = max(range(total + 1), key=lambda i: f[i])
    if schedule == "onecycle":
        assert f[0] == pytest.approx(1 / 25) and peak == warm and f[-1] == pytest.approx(1 / 25e4)
    else:
        assert f[:warm] == sorted(f[:warm]) and f[warm] == pytest.approx(1.0)
    if schedule == "constant":
        assert all(x == 1.0 for x in f[warm:])
    else:
        assert f[peak:] == sorted(f[peak:], reverse=True)
    if schedule in ("linear", "cosine"):
        assert f[-1] == pytest.approx(0.0, abs=1e-12)
        assert f[55] == pytest.approx(0.5 if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_multiplier(schedule, 5, 100, 0.1) == lr_multiplier(schedule, 5, 100, 10)   # fraction of steps


def test_schedule_applied_and_restart(toy_task):
    seen = []

    class Watch:
        def on_step_end(self, s):
            seen.append(s.optimizer.param_groups[0]["lr"])
            if s.step == 10:
                s.restart_schedule()
    fit(toy_task, toy_task.build_model(), cfg(steps=20, warmup_steps=0, lr=0.1, eval_every=None), hooks=[Watch()])
    assert seen[0] == pytest.approx(0.1 * (1 - 1 / 20)) and seen[8] == pytest.approx(0.1 * (1 - 9 / 20))
    assert seen[10] == pytest.approx(0.1 * (1 - 1 / 10))          # rewound: a fresh decay over the last 10


def test_param_groups_by_regex(toy_model):
    opt = build_optimizer(toy_model, cfg(param_groups=[{"pattern": r"^head\.", "lr": 1e-3, "weight_decay": 0.0}]))
    head = [g for g in opt.param_groups if g["lr"] == 1e-3][0]
    assert len(head["params"]) == 2 and head["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(toy_model.parameters()))
    with pytest.raises(SMCError, match="matches no trainable parameter"):
        build_optimizer(toy_model, cfg(param_groups=[{"pattern": "classifier", "lr": 1e-3}]))


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fused_optimizer_matches_the_per_tensor_loop(toy_model, name):
    import copy
    c = cfg(optimizer=name, weight_decay=0.01)
    twin = copy.deepcopy(toy_model)
    fused = build_optimizer(toy_model, c)
    plain = OPTIMIZERS[name](twin.parameters(), lr=c.lr, betas=tuple(c.betas), eps=c.eps,
                             weight_decay=c.weight_decay)
    assert fused.defaults["fused"] is True
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        for p, q in zip(toy_model.parameters(), twin.parameters()):
            p.grad = torch.randn(p.shape, generator=gen)
            q.grad = p.grad.clone()
        fused.step(), plain.step()
    for p, q in zip(toy_model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_distill_loss_matches_definition():
    g = torch.Generator().manual_seed(0)
    s, t, T = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g), 2.0
    p_t = F.softmax(t / T, -1)
    manual = (p_t * (p_t.log() - F.log_softmax(s / T, -1))).sum(-1).mean() * T * T
    assert distill_loss(s, t, T) == pytest.approx(float(manual), rel=1e-5)
    assert float(distill_loss(t, t, T)) == pytest.approx(0.0, abs=1e-6)


def test_fit_with_teacher(toy_task):
    teacher = fit(toy_task, toy_task.build_model(), cfg()).model
    hard = fit(toy_task, toy_task.build_model(), cfg(distill={"weight": 0.0, "temperature": 2.0}),
               teacher=teacher)
    plain = fit(toy_task, toy_task.build_model(), cfg())
    assert same(weights(hard.model), weights(plain.model))        # weight 0 = the task loss only
    soft = fit(toy_task, toy_task.build_model(), cfg(distill={"weight": 1.0, "temperature": 2.0}),
               teacher=teacher)
    assert not same(weights(soft.model), weights(plain.model))
    with torch.no_grad():
        b = next(toy_task.batches("dev", 256))
        agree = (soft.model.eval()(b["input_ids"]).argmax(-1) == teacher(b["input_ids"]).argmax(-1)).float().mean()
    assert agree > 0.8


@pytest.mark.parametrize("bad, match", [
    (dict(optimizer="sgd"), "unknown optimizer"), (dict(schedule="step"), "unknown schedule"),
    (dict(steps=None, epochs=None), "needs `steps` or `epochs`"), (dict(steps=0), "positive"),
    (dict(distill={"weight": 0.5, "temperature": 2.0}), "teacher"), (dict(device="tpu"), "bad device"),
])
def test_config_errors(toy_task, bad, match):
    with pytest.raises(SMCError, match=match):
        fit(toy_task, toy_task.build_model(), cfg(**bad))


def test_epochs_to_steps_and_devices(toy_task):
    result = fit(toy_task, toy_task.build_model(), cfg(steps=None, epochs=0.5, eval_every=None))
    assert result.steps == math.ceil(0.5 * toy_task.num_batches("train", 32))
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    moved = to_device({"a": torch.ones(1), "b": [torch.zeros(1), (torch.ones(2),)], "c": "text"}, "cpu")
    assert moved["c"] == "text" and moved["b"][1][0].shape == (2,)


def test_non_finite_loss_is_a_clear_error(toy_task):
    class Diverged(type(toy_task)):
        def loss(self, model, batch):
            return super().loss(model, batch) * float("nan")
    with pytest.raises(SMCError, match="lower the learning rate"):
        fit(Diverged(), toy_task.build_model(), cfg())


def test_default_reports_the_last_evaluation_not_the_best(toy_task):
    """Periodic evaluations on the evaluation split (the test split for most datasets) must not pick the
    reported model: by default the metrics are the last step's."""
    res = fit(toy_task, toy_task.build_model(), cfg(steps=24, eval_every=4, lr=0.2))
    assert res.best_step is None and res.steps == 24
    assert res.metrics["accuracy"] == res.history[-1]["accuracy"] and res.history[-1]["step"] == 24


class _Exploit:
    """Unpickling this would create a file: what a planted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_whose_unpickling_would_run_code_is_refused(toy_task, tmp_path):
    marker, ckpt = tmp_path / "pwned", tmp_path / "fit.pt"
    torch.save({"model": _Exploit(marker)}, ckpt)
    with pytest.raises(SMCError, match=f"rm {ckpt}"):
        fit(toy_task, toy_task.build_model(), cfg(steps=4, eval_every=2), checkpoint=ckpt)
    assert not marker.exists()


def test_a_garbage_checkpoint_names_itself_and_the_fix(toy_task, tmp_path):
    ckpt = tmp_path / "fit.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(SMCError, match="restarts from step 0"):
        fit(toy_task, toy_task.build_model(), cfg(steps=4, eval_every=2), checkpoint=ckpt)


def test_sparseml_hardness_cannot_silently_switch_distillation_off(toy_task):
    """SparseML's `hardness` is the distillation loss's share; this code once read `hardness` as the task
    loss's share, so {hardness: 1.0} (all distillation in an oBERT recipe) meant no distillation. Refused."""
    teacher = toy_task.build_model()
    with pytest.raises(SMCError, match="write `weight`"):
        fit(toy_task, toy_task.build_model(), cfg(distill={"hardness": 1.0, "temperature": 2.0}), teacher=teacher)
