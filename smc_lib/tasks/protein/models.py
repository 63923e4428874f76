"""Protein language models with a classification head on the mean-pooled residue representation.

- ESM-1b / ESM-2 (Rives et al. 2021; Lin et al. 2023) through `fair-esm`: a hub name such as
  `esm1b_t33_650M_UR50S` or `esm2_t6_8M_UR50D` (downloaded on a host with a network), a local `.pt`
  checkpoint, or `esm2-tiny` — a small ESM-2 of the profile's size, randomly initialised (the CPU profile:
  no protein weights can be had offline here). Their language-model and contact heads are dropped.
- TAPE's transformer (Rao et al. 2019): BERT, 12 × 768, with TAPE's 30-token IUPAC vocabulary, through
  `transformers` (`tape`: random init of that shape; a local folder with TAPE weights converted to
  `BertModel` loads through `from_pretrained`).

Both read token ids made by `Tokenizer`; the head sees the mean over residue positions (special tokens and
padding left out), as HotProtein's and the paper's classification heads do.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch
from torch import nn

from ...errors import SMCError

TAPE_VOCAB = ["<pad>", "<mask>", "<cls>", "<sep>", "<unk>"] + list("ABCDEFGHIKLMNOPQRSTUVWXYZ")
ESM_LIMIT = 1022                       # residues ESM-1b / ESM-2 take (1024 positions with <cls>, <eos>)


class Tokenizer:
    """Residues → ids for one family: ESM's alphabet (`<cls>` … `<eos>`) or TAPE's (`<cls>` … `<sep>`)."""

    def __init__(self, family: str):
        if family == "tape":
            self.index = {t: i for i, t in enumerate(TAPE_VOCAB)}
            self.pad, self.bos, self.eos, self.unk = 0, 2, 3, 4
        else:
            import esm
            alphabet = esm.data.Alphabet.from_architecture("ESM-1b")   # ESM-1b and ESM-2 share it
            self.index = dict(alphabet.tok_to_idx)
            self.pad, self.bos, self.eos, self.unk = (alphabet.padding_idx, alphabet.cls_idx, alphabet.eos_idx,
                                                      alphabet.unk_idx)
        self.size = len(self.index)

    def __call__(self, sequences: list[str]) -> torch.Tensor:
        """[batch, 2 + longest] ids: <bos> residues <eos>, padded."""
        width = 2 + max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad, dtype=torch.long)
        for i, s in enumerate(sequences):
            ids[i, : len(s) + 2] = torch.tensor([self.bos] + [self.index.get(c, self.unk) for c in s] + [self.eos])
        return ids


class ESMClassifier(nn.Module):
    """A fair-esm model (ESM-1b, ESM-2) and a linear head on the mean residue representation."""

    def __init__(self, backbone: nn.Module, classes: int, tokenizer: Tokenizer, dropout: float = 0.0):
        super().__init__()
        self.backbone, self.tok = backbone, tokenizer
        self.backbone.lm_head = nn.Identity()          # unused here: no weights to store, count or prune
        if hasattr(self.backbone, "contact_head"):
            self.backbone.contact_head = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        dim = getattr(backbone, "embed_dim", None) or backbone.args.embed_dim    # ESM-2 / ESM-1b
        self.head = nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        last = self.backbone.num_layers
        rep = self.backbone(ids, repr_layers=[last])["representations"][last]
        keep = ((ids != self.tok.pad) & (ids != self.tok.bos) & (ids != self.tok.eos)).unsqueeze(-1).to(rep.dtype)
        pooled = (rep * keep).sum(1) / keep.sum(1).clamp(min=1)
        return self.head(self.dropout(pooled))


class TAPEClassifier(nn.Module):
    """TAPE's BERT and a linear head on the mean residue representation."""

    def __init__(self, bert: nn.Module, classes: int, tokenizer: Tokenizer, dropout: float = 0.1):
        super().__init__()
        self.bert, self.tok = bert, tokenizer
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(bert.config.hidden_size, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids != self.tok.pad
        rep = self.bert(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        keep = (mask & (ids != self.tok.bos) & (ids != self.tok.eos)).unsqueeze(-1).to(rep.dtype)
        return self.head(self.dropout((rep * keep).sum(1) / keep.sum(1).clamp(min=1)))


def family(model: str) -> str:
    if "if1" in model.lower():
        return "if1"
    return "tape" if model.startswith("tape") else "esm"


def esm_checkpoints():
    """Let `torch.load` read fair-esm checkpoints. They keep their training arguments as an
    `argparse.Namespace` (`args` in ESM-1b and ESM-IF1, `cfg["model"]` in ESM-2), which torch's default
    weights-only unpickler refuses; fair-esm calls `torch.load` without saying, so allow exactly that class
    rather than unpickling arbitrary objects."""
    return torch.serialization.safe_globals([argparse.Namespace])


def build(model: str, classes: int, layers: int = 4, embed_dim: int = 128, heads: int = 4,
          dropout: float = 0.0, max_positions: int = ESM_LIMIT + 2) -> tuple[nn.Module, dict]:
    """(classifier, provenance) for a model name; provenance records what was loaded (sha256 of a local
    checkpoint, the hub name, or the random-init shape)."""
    tok = Tokenizer(family(model))
    if model == "esm2-tiny":
        from esm.model.esm2 import ESM2
        backbone = ESM2(num_layers=layers, embed_dim=embed_dim, attention_heads=heads, alphabet="ESM-1b",
                        token_dropout=False)
        return ESMClassifier(backbone, classes, tok, dropout), {"init": "random", "layers": layers,
                                                                "embed_dim": embed_dim, "heads": heads}
    if model.startswith("tape"):
        from transformers import BertConfig, BertModel
        path = model.split(":", 1)[1] if ":" in model else None
        if path:
            bert = BertModel.from_pretrained(path, add_pooling_layer=False)   # unused, as in the random init
            return TAPEClassifier(bert, classes, tok, dropout), {"path": path}
        cfg = BertConfig(vocab_size=len(TAPE_VOCAB), hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                         max_position_embeddings=8192, pad_token_id=0)
        return TAPEClassifier(BertModel(cfg, add_pooling_layer=False), classes, tok, dropout), {"init": "random"}
    import esm
    path = Path(model)
    try:
        with esm_checkpoints():
            if path.suffix == ".pt" and path.is_file():
                backbone, _ = esm.pretrained.load_model_and_alphabet_local(str(path))
                prov = {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            else:
                backbone, _ = esm.pretrained.load_model_and_alphabet(model)
                prov = {"hub": model}
    except Exception as e:  # noqa: BLE001 - a download or unpickling failure: one line for the user
        raise SMCError(f"cannot load protein model {model!r} ({type(e).__name__}: {str(e)[:120]}); give "
                       "esm2-tiny, tape, a local ESM .pt checkpoint, or a fair-esm name on a host with a network") from None
    return ESMClassifier(backbone, classes, tok, dropout), prov
