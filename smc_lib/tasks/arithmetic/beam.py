"""Beam-search decoding of the goal-driven tree decoder (Xie & Sun 2019, beam 5 in Patel et al. 2021).

Each hypothesis keeps the two stacks of the reference implementation: pending raw goals (top = the
node to generate next) and the partial subtree embeddings. All live hypotheses of one problem are
scored in one batched call. Operators are masked once the remaining length could no longer close the
tree, so every returned sequence is a complete prefix expression.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .tree import NEG_INF, TreeDecoder


@dataclass
class Hypothesis:
    score: float
    goals: list[Tensor]                       # raw goals of pending nodes; last = next node
    subtrees: list[tuple[Tensor | int, bool]] = field(default_factory=list)  # (embedding | op id, done)
    out: list[int] = field(default_factory=list)

    @property
    def left_subtree(self) -> Tensor | None:
        """The finished left sibling of the next node, if the next node is a right child."""
        if self.subtrees and self.subtrees[-1][1]:
            return self.subtrees[-1][0]
        return None


@torch.no_grad()
def beam_search(dec: TreeDecoder, enc: Tensor, enc_pad: Tensor, problem: Tensor, leaves: Tensor,
                leaf_pad: Tensor, beam_size: int = 5, max_len: int = 30) -> list[int]:
    """Best prefix token ids for one problem. enc (W, H), problem (H,), leaves (K, H)."""
    enc_proj = dec.attn.project_b(enc)
    beams = [Hypothesis(0.0, [problem])]
    for step in range(max_len):
        live = [h for h in beams if h.goals]
        if not live:
            break
        m = len(live)
        q, ctx = _goal_and_context(dec, live, enc, enc_proj, enc_pad)
        logp = torch.log_softmax(dec.logits(q, ctx, leaves.expand(m, -1, -1),
                                            leaf_pad.expand(m, -1)), dim=-1)
        remaining = max_len - step
        for j, h in enumerate(live):
            if len(h.goals) + 2 > remaining:
                logp[j, : dec.n_ops] = NEG_INF
        top_lp, top_tok = logp.topk(min(beam_size, logp.size(1)), dim=-1)
        cands = [(h.score, h, None, None) for h in beams if not h.goals]
        for j, h in enumerate(live):
            for lp, tok in zip(top_lp[j].tolist(), top_tok[j].tolist()):
                cands.append((h.score + lp, h, j, tok))
        cands.sort(key=lambda c: -c[0])
        beams = _expand(dec, cands[:beam_size], q, ctx, leaves)
    return max(beams, key=lambda h: h.score).out


def _goal_and_context(dec: TreeDecoder, live: list[Hypothesis], enc: Tensor, enc_proj: Tensor,
                      enc_pad: Tensor) -> tuple[Tensor, Tensor]:
    raw = torch.stack([h.goals[-1] for h in live])
    lefts = [h.left_subtree for h in live]
    q = dec.goal(raw, None)
    right = [j for j, l in enumerate(lefts) if l is not None]
    if right:
        q[right] = dec.goal(raw[right], torch.stack([lefts[j] for j in right]))
    m = len(live)
    ctx = dec.context(q, enc.expand(m, -1, -1), enc_proj.expand(m, -1, -1), enc_pad.expand(m, -1))
    return q, ctx


def _expand(dec: TreeDecoder, chosen: list, q: Tensor, ctx: Tensor, leaves: Tensor) -> list[Hypothesis]:
    """Apply each chosen (score, parent, row, token): split goals for operators, merge for leaves."""
    ops = [(k, c) for k, c in enumerate(chosen) if c[2] is not None and c[3] < dec.n_ops]
    split = {}
    if ops:
        rows = torch.tensor([c[2] for _, c in ops])
        tok = torch.tensor([c[3] for _, c in ops], device=q.device)
        gl, gr = dec.generate(q[rows], ctx[rows], tok)
        split = {k: (gl[i], gr[i]) for i, (k, _) in enumerate(ops)}
    out = []
    for k, (score, h, row, tok) in enumerate(chosen):
        if row is None:
            out.append(h)
            continue
        new = Hypothesis(score, h.goals[:-1], list(h.subtrees), h.out + [tok])
        if tok < dec.n_ops:
            gl, gr = split[k]
            new.goals += [gr, gl]
            new.subtrees.append((tok, False))
        else:
            cur = leaves[tok - dec.n_ops]
            while new.subtrees and new.subtrees[-1][1]:
                sub, _ = new.subtrees.pop()
                op, _ = new.subtrees.pop()
                op_t = torch.tensor([op], device=cur.device)
                cur = dec.merge_subtree(op_t, sub[None], cur[None])[0]
            new.subtrees.append((cur, True))
        out.append(new)
    return out
