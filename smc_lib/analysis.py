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


# ------------------------------------------------------------------------------------------- from records
def nearest_levels(levels, wanted=(0.36, 0.67, 0.83)) -> list[float]:
    """The grid's levels nearest the paper's 36 / 67 / 83 % (Figures 6-8), without repeats."""
    levels = sorted(set(levels))
    return sorted({min(levels, key=lambda s: abs(s - w)) for w in wanted}) if levels else []


def similarity(records, methods=None) -> "pd.DataFrame":
    """Pairwise similarity of the masks of records at one dataset and sparsity: Pearson correlation of their
    per-parameter sparsities and Jaccard overlap of their kept sets (from the mask samples), each beside what
    two random masks at that sparsity give (random pruning has the same sparsity in every layer, so it
    correlates with nothing; two random kept sets overlap by (1 - s) / (1 + s))."""
    import itertools

    import pandas as pd

    by_method = {r.config["method"]: r for r in records if methods is None or r.config["method"] in methods}
    rows = []
    for a, b in itertools.combinations(sorted(by_method), 2):
        ra, rb = by_method[a], by_method[b]
        la = {x["param"]: x["sparsity"] for x in ra.layerwise}
        lb = {x["param"]: x["sparsity"] for x in rb.layerwise}
        common = sorted(la.keys() & lb.keys())
        va, vb = np.array([la[n] for n in common]), np.array([lb[n] for n in common])
        corr = float(np.corrcoef(va, vb)[0, 1]) if len(common) > 2 and va.std() > 0 and vb.std() > 0 else float("nan")
        sizes = {x["param"]: x["numel"] for x in ra.layerwise}
        sa, sb = ra.analysis.get("mask_sample"), rb.analysis.get("mask_sample")
        jac = jaccard(unpack(sa, sizes), unpack(sb, sizes), sizes) if sa and sb else float("nan")
        s = ra.config["sparsity"]
        rows.append({"a": a, "b": b, "sparsity": s, "layer_corr": corr, "jaccard": jac,
                     "jaccard_random": (1 - s) / (1 + s)})
    return pd.DataFrame(rows, columns=["a", "b", "sparsity", "layer_corr", "jaccard", "jaccard_random"])


def similarity_table(records, levels: str = "all") -> "pd.DataFrame":
    """`similarity` of the sparse records of every dataset at each of its levels (`levels="nearest"`: only the
    levels nearest the paper's 36 / 67 / 83 %, as Figures 6-8 draw), with the task and dataset."""
    import pandas as pd

    sparse = [r for r in records if r.config["method"] != "dense"]
    tables = []
    for ds in sorted({r.config["dataset"] for r in sparse}):
        mine = [r for r in sparse if r.config["dataset"] == ds]
        found = sorted({r.config["sparsity"] for r in mine})
        for s in (nearest_levels(found) if levels == "nearest" else found):
            at = [r for r in mine if r.config["sparsity"] == s]
            tables.append(similarity(at).assign(task=at[0].config["task"], dataset=ds))
    empty = similarity([]).assign(task=[], dataset=[])
    return pd.concat(tables, ignore_index=True) if tables else empty


def records_near(records, wanted, dataset: str | None = None) -> tuple[list, str | None, list[float]]:
    """The sparse records of `dataset` (default: the first with any) at the levels nearest `wanted` (a level
    or a list): what a section's layerwise chart draws. Returns (records, dataset, levels)."""
    sparse = [r for r in records if r.config["method"] != "dense"]
    dataset = dataset or (sparse[0].config["dataset"] if sparse else None)
    mine = [r for r in sparse if r.config["dataset"] == dataset]
    wanted = [wanted] if isinstance(wanted, (int, float)) else list(wanted)
    levels = nearest_levels([r.config["sparsity"] for r in mine], wanted)
    return [r for r in mine if r.config["sparsity"] in levels], dataset, levels
