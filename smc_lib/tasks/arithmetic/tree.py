"""The goal-driven tree decoder shared by GTS and Graph2Tree.

Xie & Sun, "A Goal-Driven Tree-Structured Neural Model for Math Word Problems" (IJCAI 2019): the
expression tree is generated in prefix order; each node carries a goal vector q; an operator node
splits its goal into a left and a right sub-goal (node generation), a finished subtree is summarised
bottom-up into a subtree embedding (subtree merge), and a right child's goal is gated with its left
sibling's subtree embedding. Zhang et al., "Graph-to-Tree Learning for Solving Math Word Problems"
(ACL 2020) use the same decoder on top of a graph encoder.

Module and parameter layout follow the reference implementation (github.com/ShichaoSun/math_seq2tree,
as used by Patel et al. 2021 and SMC-Bench). Training differs only in *how* it is computed: teacher
forcing knows the gold tree, so instead of walking Python stacks node by node we compute all subtree
embeddings bottom-up by height and all goals top-down by depth, batched over every node of the batch
at once (the same function, a handful of tensor ops per tree level).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .linear_tape import LinearTape, linear

NEG_INF = -1e12


def tree_links(ids: list[int], n_ops: int) -> dict[str, list[int]]:
    """Parent, children, depth and height of every position of a prefix sequence (-1 where none)."""
    n = len(ids)
    parent, left, right, depth = [-1] * n, [-1] * n, [-1] * n, [0] * n
    open_ops: list[int] = []
    for t, tok in enumerate(ids):
        if open_ops:
            p = open_ops[-1]
            parent[t], depth[t] = p, depth[p] + 1
            if left[p] == -1:
                left[p] = t
            else:
                right[p] = t
                open_ops.pop()
        if tok < n_ops:
            open_ops.append(t)
    height = [0] * n
    for t in reversed(range(n)):
        if ids[t] < n_ops:
            height[t] = 1 + max(height[left[t]], height[right[t]])
    is_right = [int(parent[t] >= 0 and right[parent[t]] == t) for t in range(n)]
    return {"parent": parent, "left": left, "right": right, "depth": depth, "height": height,
            "is_right": is_right}


class GatedLinear(nn.Module):
    """tanh(W x) * sigmoid(W_g x): the gated unit used everywhere in GTS."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.value = nn.Linear(in_dim, out_dim)
        self.gate = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(linear(self.value, x)) * torch.sigmoid(linear(self.gate, x))


class PairScore(nn.Module):
    """score(a, b) = w · tanh(W [a; b]); W is split so each side is projected once, not per pair."""

    def __init__(self, a_dim: int, b_dim: int, hidden: int, bias: bool):
        super().__init__()
        self.a_dim = a_dim
        self.attn = nn.Linear(a_dim + b_dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=bias)

    def project_b(self, b: Tensor) -> Tensor:
        return linear(self.attn, b, columns=slice(self.a_dim, None))

    def forward(self, a: Tensor, b_proj: Tensor, mask: Tensor | None) -> Tensor:
        """a (M, A), b_proj (M, K, H) from `project_b` → (M, K), masked where `mask` is True."""
        energy = torch.tanh(linear(self.attn, a, columns=slice(None, self.a_dim), bias=False).unsqueeze(1) + b_proj)
        s = linear(self.score, energy).squeeze(-1)
        return s if mask is None else s.masked_fill(mask, NEG_INF)


class TreeDecoder(nn.Module):
    """Prediction, node generation and subtree merge of GTS, as per-node-batch functions."""

    def __init__(self, hidden: int, n_ops: int, n_constants: int, dropout: float = 0.5):
        super().__init__()
        self.n_ops = n_ops
        self.constants = nn.Parameter(torch.randn(1, n_constants, hidden))
        self.goal_left = GatedLinear(hidden, hidden)
        self.goal_right = GatedLinear(2 * hidden, hidden)
        self.attn = PairScore(hidden, hidden, hidden, bias=True)
        self.leaf_score = PairScore(2 * hidden, hidden, hidden, bias=False)
        self.ops = nn.Linear(2 * hidden, n_ops)
        self.op_embedding = nn.Embedding(n_ops, hidden)
        self.generate_left = GatedLinear(3 * hidden, hidden)
        self.generate_right = GatedLinear(3 * hidden, hidden)
        self.merge = GatedLinear(3 * hidden, hidden)
        self.drop = nn.Dropout(dropout)

    # --- the per-node pieces (used by teacher forcing and by beam search) ---
    def leaves(self, numbers: Tensor) -> Tensor:
        """Leaf embeddings: learned constants, then the encoder states of the quantities. (B, C+N, H)"""
        return torch.cat([self.constants.expand(numbers.size(0), -1, -1), numbers], dim=1)

    def goal(self, raw: Tensor, left_sub: Tensor | None) -> Tensor:
        """Goal q of a node from its parent's raw sub-goal, gated with the left sibling's subtree."""
        if left_sub is None:
            return self.goal_left(self.drop(raw))
        return self.goal_right(torch.cat([self.drop(left_sub), self.drop(raw)], dim=-1))

    def context(self, q: Tensor, enc: Tensor, enc_proj: Tensor, enc_pad: Tensor) -> Tensor:
        """Attention of goal q over the node's problem encoding: (M, H), enc (M, W, H)."""
        weights = torch.softmax(self.attn(self.drop(q), enc_proj, enc_pad), dim=-1)
        return torch.bmm(weights.unsqueeze(1), enc).squeeze(1)

    def logits(self, q: Tensor, ctx: Tensor, leaves: Tensor, leaf_pad: Tensor) -> Tensor:
        """Scores of [operators; constants; quantities] for each node. (M, n_ops + C + N)"""
        x = self.drop(torch.cat([q, ctx], dim=-1))
        leaf = self.leaf_score(x, self.leaf_score.project_b(self.drop(leaves)), leaf_pad)
        return torch.cat([linear(self.ops, x), leaf], dim=-1)

    def generate(self, q: Tensor, ctx: Tensor, op: Tensor) -> tuple[Tensor, Tensor]:
        """Raw left and right sub-goals of an operator node."""
        x = torch.cat([self.drop(q), self.drop(ctx), self.drop(self.op_embedding(op))], dim=-1)
        return self.generate_left(x), self.generate_right(x)

    def merge_subtree(self, op: Tensor, left: Tensor, right: Tensor) -> Tensor:
        x = torch.cat([self.drop(self.op_embedding(op)), self.drop(left), self.drop(right)], dim=-1)
        return self.merge(x)

    # --- teacher forcing over the whole batch ---
    def loss(self, enc: Tensor, enc_pad: Tensor, problem: Tensor, numbers: Tensor, num_pad: Tensor,
             batch: dict) -> Tensor:
        """Mean cross-entropy of the gold prefix tokens, every node of the batch at once.

        enc (B, W, H) encoder states, enc_pad (B, W) True at padding, problem (B, H) root goal,
        numbers (B, N, H) quantity encodings, num_pad (B, N) True where a slot has no quantity.
        batch holds (B, L) `target`, `target_mask`, `parent`, `depth`, `height`, `is_right`.
        Each linear layer's weight gradient is one product over all tree levels (`LinearTape`).
        """
        with LinearTape(self.modules()):
            return self._loss(enc, enc_pad, problem, numbers, num_pad, batch)

    def _loss(self, enc: Tensor, enc_pad: Tensor, problem: Tensor, numbers: Tensor, num_pad: Tensor,
              batch: dict) -> Tensor:
        valid = batch["target_mask"]
        b_idx, t_idx = valid.nonzero(as_tuple=True)
        L = valid.size(1)
        compact = torch.full((valid.numel(),), -1, dtype=torch.long, device=enc.device)
        compact[b_idx * L + t_idx] = torch.arange(b_idx.numel(), device=enc.device)

        def node(field: str) -> Tensor:
            return batch[field][b_idx, t_idx]

        def to_compact(pos: Tensor) -> Tensor:
            return torch.where(pos >= 0, compact[(b_idx * L + pos).clamp(min=0)], pos)

        tok, depth, height, is_right = node("target"), node("depth"), node("height"), node("is_right")
        parent = to_compact(node("parent"))
        left_child, right_child = to_compact(node("left")), to_compact(node("right"))
        leaves = self.leaves(numbers)
        leaf_pad = torch.cat([num_pad.new_zeros(num_pad.size(0), self.constants.size(1)), num_pad], 1)

        sub = leaves[b_idx, (tok - self.n_ops).clamp(min=0)]
        for h in range(1, int(height.max()) + 1):
            i = (height == h).nonzero(as_tuple=True)[0]
            sub = sub.index_copy(0, i, self.merge_subtree(tok[i], sub[left_child[i]], sub[right_child[i]]))

        enc_proj = self.attn.project_b(enc)
        raw_l = raw_r = enc.new_zeros(tok.numel(), enc.size(-1))
        qs, ctxs, order = [], [], []
        for d in range(int(depth.max()) + 1):
            i = (depth == d).nonzero(as_tuple=True)[0]
            if d == 0:
                raw = problem[b_idx[i]]
            else:
                raw = torch.where(is_right[i, None].bool(), raw_r[parent[i]], raw_l[parent[i]])
            right_i = is_right[i].bool()
            q = self.goal(raw, None)
            if right_i.any():
                sib = sub[left_child[parent[i[right_i]]]]
                q = q.masked_scatter(right_i[:, None], self.goal(raw[right_i], sib))
            b = b_idx[i]
            ctx = self.context(q, enc[b], enc_proj[b], enc_pad[b])
            is_op = tok[i] < self.n_ops
            if is_op.any():
                gl, gr = self.generate(q[is_op], ctx[is_op], tok[i][is_op])
                raw_l = raw_l.index_copy(0, i[is_op], gl)
                raw_r = raw_r.index_copy(0, i[is_op], gr)
            qs.append(q), ctxs.append(ctx), order.append(i)
        inv = torch.empty_like(tok)
        inv[torch.cat(order)] = torch.arange(tok.numel(), device=tok.device)
        q, ctx = torch.cat(qs)[inv], torch.cat(ctxs)[inv]
        logits = self.logits(q, ctx, leaves[b_idx], leaf_pad[b_idx])
        return F.cross_entropy(logits, tok)
