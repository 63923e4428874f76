"""Numbers the analysis pages need, computed when a run finishes and stored in its record, so the pages
render from records alone (weights are never published).

- `mask_sample`: the mask's bits at a fixed pseudo-random sample of positions of every parameter (the same
  positions for every run of a model, from a hash of the parameter's name and size). Two records' samples
  estimate the Jaccard overlap of their kept sets (Figures 6-8: do IMP, OMP and GMP keep the same weights?)
  to about ±1 % with a few thousand positions, for a few kB per record.
- `lazy_regime`: for a dense fine-tuning, the relative change ‖W_ft − W_pre‖ / ‖W_pre‖ of every in-scope
  weight matrix, and the overlap of the global magnitude masks of the pretrained and of the fine-tuned
  weights at each sparsity 1 − 0.8^k (Liu, Chen et al. 2023, §4: the "lazy regime" explanation predicts
  tiny changes and near-identical masks).
"""
from __future__ import annotations

import base64
import hashlib

import numpy as np
import torch

from .config import PAPER_SPARSITIES
from .masks import MaskSet

SAMPLE = 512          # positions per parameter (all of them when it has fewer)


def sample_positions(name: str, numel: int, k: int = SAMPLE) -> torch.Tensor:
    """Fixed positions of a parameter: a permutation seeded by sha256(name, numel), its first k."""
    seed = int.from_bytes(hashlib.sha256(f"{name}:{numel}".encode()).digest()[:8], "little") & (2**63 - 1)
    return torch.randperm(numel, generator=torch.Generator().manual_seed(seed))[: min(k, numel)]


def mask_sample(masks: MaskSet, k: int = SAMPLE) -> dict[str, str]:
    """{param: base64 of the packed kept-bits at its sample positions}."""
    out = {}
    for name, m in masks.masks.items():
        bits = m.reshape(-1).cpu()[sample_positions(name, m.numel(), k)].numpy()
        out[name] = base64.b64encode(np.packbits(bits).tobytes()).decode()
    return out


def unpack(sample: dict[str, str], sizes: dict[str, int], k: int = SAMPLE) -> dict[str, np.ndarray]:
    """The bool arrays of a stored sample (`sizes`: numel per parameter, from the record's layerwise table)."""
    return {n: np.unpackbits(np.frombuffer(base64.b64decode(s), np.uint8))[: min(k, sizes[n])].astype(bool)
            for n, s in sample.items()}


def jaccard(a: dict[str, np.ndarray], b: dict[str, np.ndarray], weights: dict[str, int] | None = None) -> float:
    """|A ∩ B| / |A ∪ B| of two kept sets from their samples (each parameter weighted by its size)."""
    inter = union = 0.0
    for n in a.keys() & b.keys():
        w = (weights or {}).get(n, 1) / max(1, len(a[n]))
        inter += w * float(np.sum(a[n] & b[n]))
        union += w * float(np.sum(a[n] | b[n]))
    return inter / union if union else float("nan")


def lazy_regime(pretrained: dict[str, torch.Tensor], finetuned: dict[str, torch.Tensor],
                sparsities=PAPER_SPARSITIES) -> dict:
    """Relative weight change per parameter, and the overlap |kept_pre ∩ kept_ft| / |kept_ft| of the global
    magnitude masks of the pretrained and the fine-tuned weights at each sparsity."""
    change = {n: float((finetuned[n].float() - pretrained[n].float()).norm() / pretrained[n].float().norm().clamp(min=1e-12))
              for n in finetuned}
    overlap = {}
    for s in sparsities:
        pre = MaskSet.from_scores(pretrained, s, transform=torch.abs)
        ft = MaskSet.from_scores(finetuned, s, transform=torch.abs)
        both = sum(int((pre.masks[n] & ft.masks[n]).sum()) for n in ft.masks)
        overlap[f"{s:g}"] = both / max(1, ft.numel() - ft.n_pruned())
    return {"relative_change": change, "magnitude_mask_overlap": overlap}
