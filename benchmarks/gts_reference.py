"""The reference implementation's way of training GTS, kept as a baseline and as a test oracle.

math_seq2tree's `train_tree` (used by Patel et al. 2021 and SMC-Bench) encodes with a packed `nn.GRU`
and walks the gold prefix sequence one position at a time for the whole batch, keeping a goal stack and
a subtree stack per problem in Python. `smc bench gts` times it against `GTS.forward` in the same process;
tests check that both give the same loss (dropout off) on the same weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from smc_lib.tasks.arithmetic.gts import GTS
from smc_lib.tasks.arithmetic.linear_tape import plain_linear
from smc_lib.tasks.arithmetic.tree import TreeDecoder


def packed_gru_like(model: GTS) -> nn.GRU:
    """An `nn.GRU` holding the same weights as `model`'s BiGRU (the reference encoder)."""
    layers = model.encoder.gru.layers
    in_dim, hidden = layers[0][0].weight_ih.size(1), layers[0][0].weight_hh.size(1)
    gru = nn.GRU(in_dim, hidden, len(layers), bidirectional=True, batch_first=True,
                 dropout=model.encoder.gru.drop.p if len(layers) > 1 else 0.0)
    with torch.no_grad():
        for i, directions in enumerate(layers):
            for layer, suffix in zip(directions, ("", "_reverse")):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(gru, f"{name}_l{i}{suffix}").copy_(getattr(layer, name))
    return gru.to(layers[0][0].weight_ih.device).train(model.training)


def reference_encode(model: GTS, gru: nn.GRU, batch: dict) -> tuple[Tensor, Tensor, Tensor]:
    """Embed, dropout, packed bidirectional GRU, directions summed (math_seq2tree `EncoderSeq`)."""
    x = model.encoder.drop(model.embedder(batch))
    lengths = batch["lengths"]
    out, _ = gru(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    H = gru.hidden_size
    fwd, bwd = out[..., :H], out[..., H:]
    problem = fwd[torch.arange(x.size(0)), (lengths - 1).to(x.device)] + bwd[:, 0]
    enc = fwd + bwd
    numbers = enc.gather(1, batch["num_pos"].unsqueeze(-1).expand(-1, -1, H))
    return enc, problem, numbers


def sequential_loss(dec: TreeDecoder, enc: Tensor, enc_pad: Tensor, problem: Tensor, numbers: Tensor,
                    num_pad: Tensor, target: Tensor, target_mask: Tensor) -> Tensor:
    """Teacher-forced loss computed position by position with per-problem stacks (train_tree)."""
    B, L = target.shape
    leaves = dec.leaves(numbers)
    leaf_pad = torch.cat([num_pad.new_zeros(B, dec.constants.size(1)), num_pad], 1)
    enc_proj = dec.attn.project_b(enc)
    goals = [[problem[b]] for b in range(B)]
    subtrees: list[list] = [[] for _ in range(B)]
    lefts: list[Tensor | None] = [None] * B
    step_logits = []
    for t in range(L):
        raw = [g[-1] if g else torch.zeros_like(problem[0]) for g in goals]
        q = torch.stack([dec.goal(r[None], None if l is None else l[None])[0] for r, l in zip(raw, lefts)])
        ctx = dec.context(q, enc, enc_proj, enc_pad)
        step_logits.append(dec.logits(q, ctx, leaves, leaf_pad))
        gl, gr = dec.generate(q, ctx, target[:, t].clamp(max=dec.n_ops - 1))
        for b in range(B):
            if not goals[b]:
                lefts[b] = None
                continue
            goals[b].pop()
            tok = int(target[b, t])
            if tok < dec.n_ops:
                goals[b] += [gr[b], gl[b]]
                subtrees[b].append((tok, False))
            else:
                cur = leaves[b, tok - dec.n_ops]
                while subtrees[b] and subtrees[b][-1][1]:
                    sub, _ = subtrees[b].pop()
                    op, _ = subtrees[b].pop()
                    cur = dec.merge_subtree(torch.tensor([op], device=cur.device), sub[None], cur[None])[0]
                subtrees[b].append((cur, True))
            lefts[b] = subtrees[b][-1][0] if subtrees[b] and subtrees[b][-1][1] else None
    logits = torch.stack(step_logits, 1)
    return F.cross_entropy(logits[target_mask], target[target_mask])


def reference_loss(model: GTS, gru: nn.GRU, batch: dict) -> Tensor:
    """The whole reference training loss: packed GRU encoder + sequential tree decoding, on plain `F.linear`."""
    with plain_linear():
        enc, problem, numbers = reference_encode(model, gru, batch)
        return sequential_loss(model.decoder, enc, batch["word_pad"], problem, numbers, batch["num_pad"],
                               batch["target"], batch["target_mask"])
