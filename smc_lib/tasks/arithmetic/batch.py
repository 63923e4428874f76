"""Collate word problems into tensors: inputs, quantity positions, gold trees and (for Graph2Tree) graphs."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from .data import OutputVocab, Problem
from .embed import input_words
from .tree import tree_links

TREE_FIELDS = ("parent", "left", "right", "depth", "height", "is_right")


def quantity_graphs(p: Problem, width: int) -> Tensor:
    """(2, W, W): Graph2Tree's quantity comparison graph and quantity cell graph (Zhang et al. 2020).

    As in the reference code (get_greater_num_graph, get_attribute_between_graph): every real word has a
    self-loop; comparison: an edge from the larger quantity to the smaller; cell: each quantity is linked to
    the cell words (`group_nums`) within 3 positions, and cell words that are the same word are linked.
    """
    n = len(p.words)
    g = torch.zeros(2, width, width)
    idx = torch.arange(n)
    g[:, idx, idx] = 1.0
    pos = p.num_pos
    for i, pi in enumerate(pos):
        for j, pj in enumerate(pos):
            if p.numbers[i] > p.numbers[j]:
                g[0, pi, pj] = 1.0
            else:
                g[0, pj, pi] = 1.0
    cell = [j for j in p.group if 0 <= j < n]
    for pi in pos:
        for j in cell:
            if j not in pos and abs(pi - j) < 4:
                g[1, pi, j] = g[1, j, pi] = 1.0
    for i in cell:
        for j in cell:
            if p.words[i] == p.words[j]:
                g[1, i, j] = g[1, j, i] = 1.0
    return g


def collate(problems: Sequence[Problem], featurize: Callable, vocab: OutputVocab, number_word: str = "NUM",
            targets: bool = True, graphs: bool = False) -> dict:
    """One batch dict; `index` is kept as a plain list so metrics can look the problems up again."""
    sentences = [input_words(p.words, number_word) for p in problems]
    batch = featurize(sentences)
    B, W, N = len(problems), max(len(s) for s in sentences), vocab.max_numbers
    lengths = torch.tensor([len(s) for s in sentences])
    batch["lengths"] = lengths
    batch["word_pad"] = torch.arange(W)[None, :] >= lengths[:, None]
    num_pos = torch.zeros(B, N, dtype=torch.long)
    num_pad = torch.ones(B, N, dtype=torch.bool)
    for b, p in enumerate(problems):
        num_pos[b, : len(p.numbers)] = torch.tensor(p.num_pos, dtype=torch.long)
        num_pad[b, : len(p.numbers)] = False
    batch["num_pos"], batch["num_pad"] = num_pos, num_pad
    if targets:
        batch.update(_targets(problems, vocab))
    if graphs:
        batch["graph"] = torch.stack([quantity_graphs(p, W) for p in problems])
    return batch


def _targets(problems: Sequence[Problem], vocab: OutputVocab) -> dict[str, Tensor]:
    ids = [vocab.encode(p.equation, p.where) for p in problems]
    L = max(len(x) for x in ids)
    out = {"target": torch.zeros(len(ids), L, dtype=torch.long),
           "target_mask": torch.zeros(len(ids), L, dtype=torch.bool)}
    for f in TREE_FIELDS:
        out[f] = torch.full((len(ids), L), -1 if f in ("parent", "left", "right") else 0, dtype=torch.long)
    for b, x in enumerate(ids):
        out["target"][b, : len(x)] = torch.tensor(x)
        out["target_mask"][b, : len(x)] = True
        links = tree_links(x, vocab.n_ops)
        for f in TREE_FIELDS:
            out[f][b, : len(x)] = torch.tensor(links[f])
    return out
