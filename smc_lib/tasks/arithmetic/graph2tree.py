"""Graph2Tree (Zhang et al., "Graph-to-Tree Learning for Solving Math Word Problems", ACL 2020).

GTS's GRU encoder followed by a graph module over two quantity graphs (see `batch.quantity_graphs`):
four GCN heads — two on the quantity comparison graph, two on the quantity cell graph, as the
reference code does — concatenated, layer-normalised with a residual, then a position-wise feed-forward
layer with a residual. The tree decoder is GTS's. SMC-Bench Table 4: hidden 384.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import OutputVocab
from .gts import GTS, ModelConfig

HEAD_GRAPHS = (0, 0, 1, 1)  # comparison, comparison, cell, cell


class GraphConvolution(nn.Module):
    """Kipf & Welling GCN layer: adj · (x W) + b (raw adjacency with self-loops, as in the original)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        bound = 1.0 / math.sqrt(out_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        return adj @ (x @ self.weight) + self.bias


class GCN(nn.Module):
    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float):
        super().__init__()
        self.gc1, self.gc2 = GraphConvolution(in_dim, hidden), GraphConvolution(hidden, out_dim)
        self.dropout = dropout

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        h = F.dropout(F.relu(self.gc1(x, adj)), self.dropout, self.training)
        return self.gc2(h, adj)


class GraphModule(nn.Module):
    def __init__(self, hidden: int, heads: int = 4, dropout: float = 0.3):
        super().__init__()
        self.heads = nn.ModuleList(GCN(hidden, hidden, hidden // heads, dropout) for _ in range(heads))
        self.norm = nn.LayerNorm(hidden // heads * heads)
        self.ff_in, self.ff_out = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, graphs: Tensor) -> Tensor:
        """x (B, W, H), graphs (B, 2, W, W) → (B, W, H)."""
        h = torch.cat([gcn(x, graphs[:, g]) for gcn, g in zip(self.heads, HEAD_GRAPHS)], dim=-1)
        h = self.norm(h) + x
        return self.ff_out(self.drop(F.relu(self.ff_in(h)))) + h


class Graph2Tree(GTS):
    uses_graphs = True

    def __init__(self, embedder: nn.Module, vocab: OutputVocab, cfg: ModelConfig):
        super().__init__(embedder, vocab, cfg)
        self.graph = GraphModule(cfg.hidden)

    def encode_words(self, batch: dict) -> tuple[Tensor, Tensor]:
        enc, problem = super().encode_words(batch)
        return self.graph(enc, batch["graph"]), problem
