"""ESM-IF1 (Hsu et al. 2022, the GVP transformer) as a thermostability classifier on protein backbones.

The paper fine-tunes `esm_if1_gvp4_t16_142M_UR50` on HP-S²C5 with a head on the encoder's mean residue
representation (its decoder, which writes sequences, is dropped). IF1 reads backbone coordinates (N, CA, C
of every residue), not sequences: no structure files are held here, so on the held data it cannot run; the
CPU profile does not run it and its test classifies synthetic backbones.

fair-esm's IF1 code imports `torch_scatter` (compiled, often unavailable) and biotite's pre-1.0
`filter_backbone`; `install_shims` supplies both from the `if1` extra (`pip install -e '.[if1]'`:
torch_geometric, biotite) before fair-esm's module is imported: `torch_scatter.scatter{,_add}` are
`torch_geometric.utils.scatter`, and `filter_backbone` is biotite's `filter_peptide_backbone`.
"""
from __future__ import annotations

import argparse
import sys
import types

import torch
from torch import nn

from ...errors import SMCError
from .models import esm_checkpoints

EXTRA = "pip install -e '.[if1]' (torch_geometric, biotite)"


def install_shims() -> None:
    """Make `esm.inverse_folding` importable without torch_scatter and with biotite ≥ 1 (idempotent)."""
    try:
        from torch_geometric.utils import scatter as pyg_scatter
        import biotite.structure as structure
    except ImportError as e:
        raise SMCError(f"ESM-IF1 needs the if1 extra ({e.name} is missing): {EXTRA}") from None
    if "torch_scatter" not in sys.modules:
        try:
            import torch_scatter  # noqa: F401  (the real one, when installed)
        except ImportError:
            shim = types.ModuleType("torch_scatter")
            shim.scatter = lambda src, index, dim=-1, out=None, dim_size=None, reduce="sum": pyg_scatter(
                src, index, dim=dim, dim_size=dim_size, reduce=reduce)
            shim.scatter_add = lambda src, index, dim=-1, out=None, dim_size=None: pyg_scatter(
                src, index, dim=dim, dim_size=dim_size, reduce="sum")
            sys.modules["torch_scatter"] = shim
    if not hasattr(structure, "filter_backbone"):
        structure.filter_backbone = structure.filter_peptide_backbone


def tiny_args(layers: int = 1, embed_dim: int = 32, heads: int = 4, gvp_scalar: int = 16, gvp_vector: int = 4,
              neighbors: int = 8, dropout: float = 0.0) -> argparse.Namespace:
    """The hyper-parameters of a small random-init GVP transformer (IF1's are 4 GVP layers, 8 × 512, 16 heads)."""
    return argparse.Namespace(
        encoder_embed_dim=embed_dim, decoder_embed_dim=embed_dim, encoder_ffn_embed_dim=4 * embed_dim,
        decoder_ffn_embed_dim=4 * embed_dim, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=heads, decoder_attention_heads=heads, dropout=dropout, attention_dropout=dropout,
        gvp_num_encoder_layers=1, gvp_top_k_neighbors=neighbors, gvp_node_hidden_dim_scalar=gvp_scalar,
        gvp_node_hidden_dim_vector=gvp_vector, gvp_edge_hidden_dim_scalar=gvp_scalar,
        gvp_edge_hidden_dim_vector=1, gvp_dropout=dropout)


class IF1Classifier(nn.Module):
    """IF1's encoder (GVP layers, then a transformer) and a linear head on its mean residue representation."""

    def __init__(self, model: nn.Module, classes: int, dropout: float = 0.0):
        super().__init__()
        self.encoder = model.encoder                       # the sequence decoder is not used
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(model.args.encoder_embed_dim, classes)

    def forward(self, coords: torch.Tensor, padding_mask: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
        rep = self.encoder(coords, padding_mask, confidence)["encoder_out"][0].transpose(0, 1)   # B x T x C
        keep = (confidence >= 0).unsqueeze(-1).to(rep.dtype)     # residues with coordinates (not the ends, padding)
        return self.head(self.dropout((rep * keep).sum(1) / keep.sum(1).clamp(min=1)))


def build(model: str, classes: int, dropout: float = 0.0, **arch) -> tuple[IF1Classifier, dict, object]:
    """(classifier, provenance, batch converter) for `esm-if1-tiny` (random init of `tiny_args(**arch)`) or a
    fair-esm IF1 name such as `esm_if1_gvp4_t16_142M_UR50` (downloaded on a host with a network)."""
    install_shims()
    import esm
    from esm.inverse_folding.gvp_transformer import GVPTransformerModel
    from esm.inverse_folding.util import CoordBatchConverter

    if model == "esm-if1-tiny":
        alphabet = esm.Alphabet.from_architecture("invariant_gvp")
        net, prov = GVPTransformerModel(tiny_args(**arch), alphabet), {"init": "random", **arch}
    else:
        try:
            with esm_checkpoints():
                net, alphabet = esm.pretrained.load_model_and_alphabet(model)
        except Exception as e:  # noqa: BLE001 - a download or unpickling failure: one line for the user
            raise SMCError(f"cannot load ESM-IF1 model {model!r} ({type(e).__name__}: {str(e)[:120]}); give "
                           "esm-if1-tiny, or a fair-esm IF1 name on a host with a network") from None
        prov = {"hub": model}
    return IF1Classifier(net, classes, dropout), prov, CoordBatchConverter(alphabet)


def collate(converter, backbones: list) -> dict[str, torch.Tensor]:
    """Backbones (each L × 3 × 3: N, CA, C in Å) → the encoder's inputs, padded."""
    coords, confidence, _, _, padding_mask = converter([(b, None, None) for b in backbones])
    return {"coords": coords, "padding_mask": padding_mask, "confidence": confidence}
