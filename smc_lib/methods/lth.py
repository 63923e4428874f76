"""Lottery tickets by iterative magnitude pruning (IMP; Frankle & Carbin 2019, "The Lottery Ticket
Hypothesis", ICLR; for pretrained BERT, Chen et al. 2020, "The Lottery Ticket Hypothesis for Pre-trained BERT
Networks", NeurIPS). Round k: train, prune `rate` (20 %) of the remaining weights by global magnitude, so
round k has sparsity 1 - 0.8^k (the last round is clipped to the target exactly), rewind the surviving
weights and train again. `rewind` = 0 rewinds to the pretrained weights (Chen et al.), `rewind` = t > 0 to
the dense run's weights after t steps (Frankle et al. 2020, "Linear Mode Connectivity and the Lottery
Ticket Hypothesis"), `rewind` = None keeps the trained weights (`lth_norewind`: IMP with fine-tuning).

One chain per (dataset, model, seed, options): the run at round k's sparsity *is* round k. Through
`MethodContext.previous` (the run store) round k starts from the stored weights and mask of the run at
round k - 1's sparsity, so the four sparsities 1 - 0.8^{1,3,5,7} cost 7 trainings, not 16; without a
store (`ctx.previous` None) every round runs here, in order."""
from __future__ import annotations

import copy
import json

from ..errors import SMCError
from ..masks import MaskSet
from ..schedules import imp_rounds
from ..scope import prunable
from . import register_method, scores
from .base import Method


class Snapshot:
    """Hook: a CPU copy of the weights after `step` optimizer steps (the rewind point)."""

    def __init__(self, step: int):
        self.step, self.state = step, None

    def on_fit_start(self, state) -> None:
        if self.step > state.total_steps:
            raise SMCError(f"lth rewind step {self.step} is past the {state.total_steps} training steps; "
                           "rewind to an earlier step (0 = the pretrained weights)")

    def on_step_end(self, state) -> None:
        if state.step == self.step:
            self.state = {k: v.detach().cpu().clone() for k, v in state.model.state_dict().items()}

    def state_dict(self) -> dict:                   # checkpointed by `fit`, so a resumed run keeps it
        return {"step": self.step, "state": self.state}

    def load_state_dict(self, d: dict) -> None:
        self.step, self.state = d["step"], d["state"]


@register_method("lth")
class LTH(Method):
    timing = "iterative"
    paper = "Frankle & Carbin 2019 (LTH/IMP); Chen et al. 2020 (LTH for pre-trained BERT, rewind to pretrained)"
    defaults = {"rate": 0.2, "rewind": 0}
    keeps_weights = True          # each round's weights and mask start the next round
    version = 2                   # 2: one chain across runs; rounds 1 - 0.8^k to 4 digits defined by k

    def check_options(self) -> None:
        imp_rounds(self.sparsity, self.options["rate"])
        r = self.options["rewind"]
        if r is not None and (not isinstance(r, int) or r < 0):
            raise SMCError(f"lth rewind must be an optimizer step >= 0 (0 = pretrained) or None, got {r!r}")

    def run(self, task, model, cfg, ctx):
        params = self.params(model, ctx)
        rewind = self.options["rewind"]
        self.rounds: list[dict] = []
        if self.sparsity == 0.0:
            return self.fit(task, model, cfg, ctx, None), MaskSet.dense(params)
        targets = imp_rounds(self.sparsity, self.options["rate"])
        start = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()} if rewind == 0 else None
        masks = None
        if len(targets) > 1 and ctx.previous is not None:     # the chain's earlier rounds are runs of their own
            trained, masks, earlier_start = ctx.previous(targets[-2])
            start = earlier_start if rewind else start
            targets = targets[-1:]
        elif rewind:
            snap = Snapshot(rewind)
            trained = self.fit(task, copy.deepcopy(model), cfg, ctx, None, [snap], tag="dense_rewind").model
            start = snap.state
        else:
            trained = self.dense_model(task, model, cfg, ctx)
        self.rewind_state = start if rewind else None
        for k, target in enumerate(targets, 1):
            masks = self.round_masks(task, trained, masks, target, cfg, ctx)
            if start is not None:
                model.load_state_dict(start)
                trained = model
            masks.apply(trained)
            result = self.fit(task, trained, cfg, ctx, masks, tag=f"round{k}")
            trained = result.model
            self.rounds.append({"round": k, "target": target, "sparsity": masks.sparsity(),
                                **{m: float(v) for m, v in result.metrics.items()}})
            self._save_rounds(ctx)
        return result, masks

    def round_masks(self, task, trained, masks: MaskSet | None, target: float, cfg, ctx) -> MaskSet:
        """The mask after a round: global magnitude of the trained weights, earlier prunes kept."""
        weights = prunable(trained, self.scope, **ctx.scope_kwargs)
        return MaskSet.from_scores(scores.magnitude(weights), target, self.layerwise, keep=masks)

    def _save_rounds(self, ctx) -> None:
        if ctx.checkpoint_dir is not None:
            (ctx.checkpoint_dir / "lth_rounds.json").write_text(json.dumps(self.rounds, indent=1))


@register_method("lth_norewind")
class LTHNoRewind(LTH):
    paper = "Frankle & Carbin 2019 (IMP) without rewinding: the trained weights are pruned and fine-tuned again"
    defaults = {"rate": 0.2, "rewind": None}
