"""GTS: a bidirectional-GRU problem encoder and the goal-driven tree decoder (Xie & Sun, IJCAI 2019).

Layout of the reference implementation (math_seq2tree `EncoderSeq`): embedding → dropout → 2-layer
bidirectional GRU; the two directions are summed; the root goal is the forward state at the last word
plus the backward state at the first word. The embedding is a contextual model (Patel et al. 2021 use
RoBERTa; SMC-Bench Table 4: GTS hidden 512, 2 layers, dropout 0.5) or a random word embedding.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .beam import beam_search
from .data import OutputVocab
from .rnn import BiGRU
from .tree import TreeDecoder


@dataclass
class ModelConfig:
    hidden: int = 512
    layers: int = 2
    dropout: float = 0.5
    beam_size: int = 5
    max_len: int = 30


class SeqEncoder(nn.Module):
    """Bidirectional GRU over word vectors; returns states (B, W, H) and the root goal (B, H)."""

    def __init__(self, in_dim: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.hidden = hidden
        self.drop = nn.Dropout(dropout)
        self.gru = BiGRU(in_dim, hidden, layers, dropout)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        fwd, bwd = self.gru(self.drop(x), lengths)
        last = (lengths - 1).to(x.device)
        problem = fwd[torch.arange(x.size(0), device=x.device), last] + bwd[:, 0]
        return fwd + bwd, problem


class GTS(nn.Module):
    """Embedder → SeqEncoder → TreeDecoder. `forward(batch)` is the teacher-forced loss."""

    uses_graphs = False

    def __init__(self, embedder: nn.Module, vocab: OutputVocab, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.vocab = vocab
        self.embedder = embedder
        self.encoder = SeqEncoder(embedder.dim, cfg.hidden, cfg.layers, cfg.dropout)
        self.decoder = TreeDecoder(cfg.hidden, vocab.n_ops, len(vocab.constants), cfg.dropout)

    def encode_words(self, batch: dict) -> tuple[Tensor, Tensor]:
        return self.encoder(self.embedder(batch), batch["lengths"])

    def encode(self, batch: dict) -> tuple[Tensor, Tensor, Tensor]:
        """(word states (B, W, H), root goals (B, H), quantity states (B, N, H))."""
        enc, problem = self.encode_words(batch)
        pos = batch["num_pos"]
        numbers = enc.gather(1, pos.unsqueeze(-1).expand(-1, -1, enc.size(-1)))
        return enc, problem, numbers

    def forward(self, batch: dict) -> Tensor:
        enc, problem, numbers = self.encode(batch)
        return self.decoder.loss(enc, batch["word_pad"], problem, numbers, batch["num_pad"], batch)

    @torch.no_grad()
    def decode(self, batch: dict, beam_size: int | None = None) -> list[list[str]]:
        """Beam-search prefix expressions (vocabulary tokens) for every problem of the batch."""
        return [[self.vocab.tokens[i] for i in best.out] for best in self.beam(batch, beam_size)]

    @torch.no_grad()
    def beam(self, batch: dict, beam_size: int | None = None) -> list:
        """The best beam-search hypothesis (token ids `.out`, log-probability `.score`) of every problem."""
        enc, problem, numbers = self.encode(batch)
        leaves = self.decoder.leaves(numbers)
        num_pad = batch["num_pad"]
        leaf_pad = torch.cat([num_pad.new_zeros(num_pad.size(0), len(self.vocab.constants)), num_pad], 1)
        return beam_search(self.decoder, enc, batch["word_pad"], problem, leaves, leaf_pad,
                           beam_size or self.cfg.beam_size, self.cfg.max_len)
