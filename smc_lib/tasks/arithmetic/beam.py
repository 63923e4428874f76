"""Beam-search decoding of the goal-driven tree decoder (Xie & Sun 2019, beam 5 in Patel et al. 2021).

Each hypothesis keeps the two stacks of the reference implementation: pending raw goals (top = the
node to generate next) and the partial subtree embeddings. Beams are kept per problem, as in the
reference, but every network call of a step is made once for the live hypotheses of *all* problems of the
batch (goal, attention, scores, node generation, and the subtree merges level by level): the decoder's
weights are read once per step instead of once per problem and hypothesis, which is what bounds a batch-1
decoder on CPU. Operators are masked once the remaining length could no longer close the tree, so every
returned sequence is a complete prefix expression.
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
                leaf_pad: Tensor, beam_size: int = 5, max_len: int = 30) -> list[Hypothesis]:
    """The best hypothesis (`.out` = prefix token ids, `.score` = log-probability) of each problem of a batch.
    enc (B, W, H), enc_pad (B, W) True at padding, problem (B, H) root goals, leaves (B, K, H) leaf
    embeddings, leaf_pad (B, K) True where a problem has no such leaf."""
    enc_proj = dec.attn.project_b(enc)
    beams = [[Hypothesis(0.0, [problem[b]])] for b in range(enc.size(0))]
    for step in range(max_len):
        live = [(b, h) for b, hyps in enumerate(beams) for h in hyps if h.goals]
        if not live:
            break
        rows = torch.tensor([b for b, _ in live], device=enc.device)
        q, ctx = _goal_and_context(dec, [h for _, h in live], enc[rows], enc_proj[rows], enc_pad[rows])
        logp = torch.log_softmax(dec.logits(q, ctx, leaves[rows], leaf_pad[rows]), dim=-1)
        too_long = torch.tensor([len(h.goals) + 2 > max_len - step for _, h in live], device=logp.device)
        logp[:, : dec.n_ops].masked_fill_(too_long[:, None], NEG_INF)
        top_lp, top_tok = (t.tolist() for t in logp.topk(min(beam_size, logp.size(1)), dim=-1))
        cands: list[list] = [[(h.score, h, None, None) for h in hyps if not h.goals] for hyps in beams]
        for j, (b, h) in enumerate(live):
            cands[b].extend((h.score + lp, h, j, tok) for lp, tok in zip(top_lp[j], top_tok[j]))
        chosen = [(b, c) for b, cs in enumerate(cands) for c in sorted(cs, key=lambda c: -c[0])[:beam_size]]
        beams = [[] for _ in beams]
        for (b, _), hyp in zip(chosen, _expand(dec, chosen, q, ctx, leaves)):
            beams[b].append(hyp)
    return [max(hyps, key=lambda h: h.score) for hyps in beams]


def _goal_and_context(dec: TreeDecoder, live: list[Hypothesis], enc: Tensor, enc_proj: Tensor,
                      enc_pad: Tensor) -> tuple[Tensor, Tensor]:
    raw = torch.stack([h.goals[-1] for h in live])
    lefts = [h.left_subtree for h in live]
    q = dec.goal(raw, None)
    right = [j for j, left in enumerate(lefts) if left is not None]
    if right:
        q[right] = dec.goal(raw[right], torch.stack([lefts[j] for j in right]))
    return q, dec.context(q, enc, enc_proj, enc_pad)


def _expand(dec: TreeDecoder, chosen: list, q: Tensor, ctx: Tensor, leaves: Tensor) -> list[Hypothesis]:
    """Apply each chosen (problem, (score, parent, row, token)): operators split their goal, a leaf closes
    subtrees bottom-up (merged for all hypotheses at once, one tree level per call)."""
    ops = [k for k, (_, c) in enumerate(chosen) if c[2] is not None and c[3] < dec.n_ops]
    split = {}
    if ops:
        rows = torch.tensor([chosen[k][1][2] for k in ops], device=q.device)
        tok = torch.tensor([chosen[k][1][3] for k in ops], device=q.device)
        gl, gr = dec.generate(q[rows], ctx[rows], tok)
        split = {k: (gl[i], gr[i]) for i, k in enumerate(ops)}
    out, closing = [], {}
    for k, (b, (score, h, row, tok)) in enumerate(chosen):
        if row is None:
            out.append(h)
            continue
        new = Hypothesis(score, h.goals[:-1], list(h.subtrees), h.out + [tok])
        if tok < dec.n_ops:
            gl, gr = split[k]
            new.goals += [gr, gl]
            new.subtrees.append((tok, False))
        else:
            closing[k] = leaves[b, tok - dec.n_ops]
        out.append(new)
    while True:                                   # merge finished siblings, all hypotheses per level
        ready = [k for k in closing if out[k].subtrees and out[k].subtrees[-1][1]]
        if not ready:
            break
        subs, op_ids = [], []
        for k in ready:
            subs.append(out[k].subtrees.pop()[0])
            op_ids.append(out[k].subtrees.pop()[0])
        merged = dec.merge_subtree(torch.tensor(op_ids, device=q.device), torch.stack(subs),
                                   torch.stack([closing[k] for k in ready]))
        closing.update(zip(ready, merged))
    for k, cur in closing.items():
        out[k].subtrees.append((cur, True))
    return out
