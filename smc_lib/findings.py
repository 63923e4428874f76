"""The paper's findings as rules over run records: claim, our measurement, verdict.

"Sparsity May Cry" (Liu, Chen et al., ICLR 2023) reads its figures in words (§4, Appendix B and C). Each
function below turns one of those readings into a rule over the tidy results table (`results.to_table`)
and, where the claim is about masks, the per-layer table (`plots.layerwise_table`). A rule returns one of

- REPRODUCED: our records show what the paper says;
- NOT_REPRODUCED: they show the opposite;
- INCONCLUSIVE: the differences are within the noise band, or the records needed are missing.

While a grid is being computed the rules take `missing`, the grid points with no record yet (task, dataset,
model, method, sparsity: `results.points` of `sweep.collect`'s missing configs), and give a verdict only
when no outcome of those points could change it: a reading of a half-computed grid is inconclusive, not
provisional. Without `missing` the table is taken as the whole grid.

The noise band of a curve is that of its dense runs: a sparse point is *below dense* when it is more than
`margin = max(1 point, 2 σ of the dense seeds)` under the dense mean (one seed: 1 point). Two methods
*differ* when their values differ by more than the same margin. Nothing here knows which verdict to expect:
the tests feed synthetic tables whose verdict is known.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .results import curves, noise_band

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
MIN_MARGIN = 1.0            # points: the paper's "more than 1 point below dense"
POST = ("lth", "gmp", "omp_after")                                      # §4.1 ③: post-training pruning
PRIOR = ("omp_before", "snip", "snip_rigl", "random_rigl", "omp_rigl")  # ... beats these
COLLAPSE = 5.0              # Appendix B: "≈ 0 accuracy", read as below 5 %
EMPTY = 0.99                # a layer with ≥ 99 % of its weights pruned is emptied
JACCARD_TOL = 0.02          # kept-set Jaccard from each record's mask sample (512 positions a parameter): ±1 %


@dataclass
class Finding:
    claim: str
    paper: str
    measured: str
    verdict: str

    def as_dict(self) -> dict:
        return asdict(self)


POINT = ["task", "dataset", "model", "method", "sparsity"]


# ------------------------------------------------------------------------------------------- noise band
def _curves(table: pd.DataFrame, band_from: pd.DataFrame | None = None) -> pd.DataFrame:
    """Sparse curves (means over seeds and folds) with their dense band joined (the band of `band_from`'s
    dense runs when given: the roadmap's records have none of their own)."""
    c = curves(table)
    band = noise_band(table if band_from is None else band_from, floor=MIN_MARGIN)
    return c[c["method"] != "dense"].merge(band, on=["task", "dataset", "model"], how="inner")


def _absent(missing: pd.DataFrame | None, methods: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The sparse grid points with no record yet (of `methods` when given); none when `missing` is None."""
    if missing is None or len(missing) == 0:
        return pd.DataFrame(columns=POINT)
    m = missing[missing["method"] != "dense"]
    if methods is not None:
        m = m[m["method"].isin(methods)]
    return m[POINT].drop_duplicates()


def _awaiting(measured: str, n: int) -> str:
    """`measured`, and how many of the claim's points wait for records."""
    return "; ".join(p for p in (measured, f"{n} undecided, awaiting records" if n else "") if p)


def _fail_bounds(c: pd.DataFrame, absent: pd.DataFrame) -> pd.DataFrame:
    """Per task/dataset/model/method (from `_curves` points and absent points): the lowest and highest
    failing sparsity the curve can still turn out to have, whatever its absent points show (`inf`: it does
    not fail within the grid), and `may_fail`: whether it can fail within the grid at all. A curve that
    fails nowhere it was run, with no absent point, fails above its highest level: `lo` is just above it."""
    group = ["task", "dataset", "model", "method"]
    fails = c.assign(fail=c["value"] < c["dense"] - c["margin"])
    rows = []
    for key, part in pd.concat([fails[group + ["sparsity", "fail"]], absent.assign(fail=np.nan)]).groupby(group):
        failed = part.loc[part["fail"] == True, "sparsity"]                 # noqa: E712 (NaN: absent)
        unknown = part.loc[part["fail"].isna(), "sparsity"]
        hi = float(failed.min()) if len(failed) else np.inf
        may = pd.concat([failed, unknown])
        lo = float(may.min()) if len(may) else float(part["sparsity"].max()) + 1e-9
        rows.append(dict(zip(group, key), lo=lo, hi=hi, may_fail=bool(len(may))))
    return pd.DataFrame(rows, columns=group + ["lo", "hi", "may_fail"])


# ------------------------------------------------------------------------------------------- the claims
def difficulty(table: pd.DataFrame, easy: str = "mawps", hard: str = "svamp",
               missing: pd.DataFrame | None = None) -> Finding:
    """① Prunability falls with task difficulty: among the methods that fail within the grid on either
    dataset, the harder one fails at a strictly lower sparsity for most and never at a higher one (a
    method that never fails counts as failing above the grid)."""
    claim = f"① harder task, lower failing sparsity ({hard.upper()} vs {easy.upper()})"
    paper = "SVAMP (and CSQA/RACE, 10-to-10) fail at lower sparsities than MAWPS (WinoGrande, 2-to-2)"
    c, absent = _curves(table), _absent(missing)
    b = _fail_bounds(c, absent)
    e, h = (b[b["dataset"] == ds].set_index(["model", "method"]) for ds in (easy, hard))
    both = e.index.intersection(h.index)
    if len(both) == 0:
        return Finding(claim, paper, f"no method run on both {easy} and {hard}", INCONCLUSIVE)
    lower, higher, equal, undecided = [], [], [], []
    for i in both:
        a, z = e.loc[i], h.loc[i]
        if not (a["may_fail"] or z["may_fail"]):
            continue                                            # neither fails within the grid: no reading
        if z["hi"] < a["lo"]:
            lower.append(i)
        elif z["lo"] > a["hi"]:
            higher.append(i)
        elif a["lo"] == a["hi"] == z["lo"] == z["hi"]:
            equal.append(i)
        else:
            undecided.append(i)
    n = len(lower) + len(higher) + len(equal) + len(undecided)
    if n == 0:
        return Finding(claim, paper, "no method fails within the grid on either dataset", INCONCLUSIVE)
    levels = pd.concat([c.loc[c["dataset"].isin([easy, hard]), "sparsity"],
                        absent.loc[absent["dataset"].isin([easy, hard]), "sparsity"]])
    floor = float(levels.min())                                  # the grid's lowest level
    censored = sum(e.loc[i, "hi"] == floor for i in equal)
    measured = (f"of {n} methods failing on either: {hard} fails lower for {len(lower)}, "
                f"higher for {len(higher)} ({', '.join(m for _, m in higher) or 'none'}), "
                f"equal for {len(equal)}"
                + (f" ({censored} of them at the grid's lowest level, {floor:.0%}, on both: a finer grid below it "
                   "could order them)" if censored else ""))
    measured = _awaiting(measured, len(undecided))
    if higher and len(higher) >= len(lower) + len(undecided):
        verdict = NOT_REPRODUCED
    elif len(lower) * 2 > n and not higher and not undecided:
        verdict = REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Finding(claim, paper, measured, verdict)


def _pairs(c: pd.DataFrame, a: tuple[str, ...], b: tuple[str, ...]) -> pd.DataFrame:
    """Every (a-method, b-method) pair at the same task/dataset/model/sparsity: diff = a - b, margin."""
    keys = ["task", "dataset", "model", "sparsity"]
    left = c[c["method"].isin(a)][keys + ["method", "value", "margin"]]
    right = c[c["method"].isin(b)][keys + ["method", "value"]]
    m = left.merge(right, on=keys, suffixes=("_a", "_b"))
    m["diff"] = m["value_a"] - m["value_b"]
    return m


def _read_pairs(c: pd.DataFrame, missing: pd.DataFrame | None, a: tuple[str, ...],
                b: tuple[str, ...]) -> tuple[pd.DataFrame, int]:
    """`_pairs(c, a, b)`, and how many (a, b) pairs at a common grid point it cannot read yet (a side has no
    record)."""
    m = _pairs(c, a, b)
    absent = _absent(missing, a + b)
    if absent.empty:
        return m, 0
    pts = pd.concat([c[POINT], absent]).drop_duplicates()
    keys = ["task", "dataset", "model", "sparsity"]
    return m, len(pts[pts["method"].isin(a)].merge(pts[pts["method"].isin(b)], on=keys)) - len(m)


def post_beats_prior(table: pd.DataFrame, missing: pd.DataFrame | None = None) -> Finding:
    """② Prior-training pruning loses to post-training pruning: over every (post, prior) pair at the same
    sparsity, post wins (by more than the margin) at least half the time and loses at most a tenth."""
    claim = "② post-training pruning (LTH, GMP, OMP-after) beats prior-training (OMP-before, SNIP, RigL ×3)"
    paper = "§4.1 ③: at the same sparsity, after-training methods stay above before-training ones"
    m, u = _read_pairs(_curves(table), missing, POST, PRIOR)
    if m.empty and not u:
        return Finding(claim, paper, "no post/prior pair at a common sparsity", INCONCLUSIVE)
    wins, losses = int((m["diff"] > m["margin"]).sum()), int((m["diff"] < -m["margin"]).sum())
    n = len(m) + u
    measured = _awaiting(f"{n} pairs: post wins {wins}, loses {losses}, within noise {len(m) - wins - losses}", u)
    if losses > wins + u:
        verdict = NOT_REPRODUCED
    elif wins * 2 >= n and (losses + u) * 10 <= n:
        verdict = REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Finding(claim, paper, measured, verdict)


def snip_no_better_than_random(table: pd.DataFrame, missing: pd.DataFrame | None = None) -> Finding:
    """② SNIP is no better than random pruning before training: SNIP never beats random_before by more
    than the margin (not reproduced when it does at most of the common sparsities)."""
    claim = "② SNIP is no better than random pruning before training"
    paper = "§4.1: SNIP performs no better than random pruning at initialization"
    m, u = _read_pairs(_curves(table), missing, ("snip",), ("random_before",))
    if m.empty and not u:
        return Finding(claim, paper, "no SNIP / random-before pair at a common sparsity", INCONCLUSIVE)
    better = int((m["diff"] > m["margin"]).sum())
    n = len(m) + u
    measured = _awaiting(f"SNIP above random-before by more than the margin at {better} of {n} points"
                         + (f" (mean difference {m['diff'].mean():+.1f})" if len(m) else ""), u)
    verdict = (REPRODUCED if better == 0 and not u else NOT_REPRODUCED if better * 2 > n else INCONCLUSIVE)
    return Finding(claim, paper, measured, verdict)


def _kind_sparsity(layers: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Numel-weighted sparsity of the parameters of `kind`, per run (task/dataset/model/method/sparsity)."""
    keys = ["task", "dataset", "model", "method", "sparsity"]
    part = layers[layers["kind"] == kind].assign(pruned=lambda d: d["layer_sparsity"] * d["numel"])
    g = part.groupby(keys, as_index=False).agg(pruned=("pruned", "sum"), numel=("numel", "sum"))
    g["kind_sparsity"] = g["pruned"] / g["numel"]
    return g[keys + ["kind_sparsity"]]


def snip_embedding(layers: pd.DataFrame, rival: str = "omp_before", missing: pd.DataFrame | None = None) -> Finding:
    """② SNIP concentrates its pruning in the embedding: at most levels its embedding sparsity is above
    both the overall level and `rival`'s embedding sparsity (by 5 points)."""
    claim = "② SNIP prunes the embedding hardest"
    paper = "Fig. 6: 99.7 % embedding sparsity at 36 % overall (RoBERTa; MiniLM's embedding is ~half the scope)"
    k = _kind_sparsity(layers, "embedding") if len(layers) else pd.DataFrame(columns=POINT + ["kind_sparsity"])
    keys = ["task", "dataset", "model", "sparsity"]
    s = k[k["method"] == "snip"].merge(k[k["method"] == rival], on=keys, suffixes=("", "_rival"))
    u = len(_absent(missing, ("snip", rival)).drop_duplicates(keys))     # levels a side of is still to come
    if s.empty and not u:
        return Finding(claim, paper, f"no SNIP / {rival} per-layer records at a common sparsity", INCONCLUSIVE)
    above = (s["kind_sparsity"] > s["sparsity"] + 0.05) & (s["kind_sparsity"] > s["kind_sparsity_rival"] + 0.05)
    below = (s["kind_sparsity"] < s["sparsity"] - 0.05)
    detail = "; ".join(f"{r.dataset} {r.sparsity:.0%}: {r.kind_sparsity:.1%} (vs {rival} {r.kind_sparsity_rival:.1%})"
                       for r in s.itertuples())
    n = len(s) + u
    measured = _awaiting(f"SNIP's embedding sparsity above the level and {rival}'s at {int(above.sum())} of {n}"
                         + (f": {detail}" if detail else ""), u)
    verdict = REPRODUCED if above.sum() * 2 > n else NOT_REPRODUCED if below.sum() * 2 > n else INCONCLUSIVE
    return Finding(claim, paper, measured, verdict)


def imp_not_better(table: pd.DataFrame, task: str = "arithmetic", top: int = 2,
                   missing: pd.DataFrame | None = None) -> Finding:
    """③ IMP (LTH) is not better than OMP-after and GMP at the `top` highest sparsities of LTH's grid on
    `task`: reproduced when LTH never beats the better of them by more than the margin there."""
    claim = f"③ LTH is no better than OMP-after and GMP at the {top} highest sparsities ({task})"
    paper = "§4.2: the expensive IMP does not beat one-shot OMP-after or GMP at high sparsity"
    rivals = ("omp_after", "gmp")
    c = _curves(table)
    c = c[c["task"] == task]
    absent = _absent(missing, ("lth",) + rivals)
    absent = absent[absent["task"] == task]
    rows, undecided = [], []
    for (ds, model), part in pd.concat([c, absent]).groupby(["dataset", "model"]):
        for s in sorted(part.loc[part["method"] == "lth", "sparsity"].unique())[-top:]:
            at = part[part["sparsity"] == s]
            known = at[at["value"].notna()].set_index("method")
            pending = set(at.loc[at["value"].isna(), "method"]) & set(rivals)
            have = [m for m in rivals if m in known.index]
            if "lth" not in known.index or not have:
                undecided.append((ds, s))
                continue
            d, margin = known.loc["lth", "value"] - known.loc[have, "value"].max(), known["margin"].iloc[0]
            if d > margin and pending:                   # a rival still to come could beat LTH
                undecided.append((ds, s))
            else:
                rows.append((ds, s, d, margin))
    if not rows and not undecided:
        return Finding(claim, paper, "no LTH with OMP-after / GMP at common sparsities", INCONCLUSIVE)
    better = [r for r in rows if r[2] > r[3]]
    measured = "; ".join([f"{ds} {s:.0%}: LTH − best(OMP-after, GMP) = {d:+.1f} (margin {m:.1f})" for ds, s, d, m in rows]
                         + [f"{ds} {s:.0%}: awaiting records" for ds, s in undecided])
    verdict = (INCONCLUSIVE if undecided else REPRODUCED if not better
               else NOT_REPRODUCED if len(better) == len(rows) else INCONCLUSIVE)
    return Finding(claim, paper, measured, verdict)


def layerwise_alike(layers: pd.DataFrame, methods: tuple[str, ...] = ("lth", "omp_after", "gmp"),
                    baseline: str = "random_after", min_corr: float = 0.9, gap: float = 0.3,
                    missing: pd.DataFrame | None = None) -> Finding:
    """④ IMP / OMP-after / GMP give nearly identical layerwise sparsities: at every dataset and level, the
    smallest Pearson correlation of their per-parameter sparsities is ≥ `min_corr` and above the
    correlation random pruning at the same level has with them (layer shapes alone) by `gap`."""
    claim = "④ LTH, OMP-after and GMP have the same layerwise sparsity"
    paper = "Fig. 6-8: their layerwise sparsities 'all overlapped on one line'"
    waiting = {(r.dataset, r.sparsity) for r in _absent(missing, methods + (baseline,)).itertuples()}
    if layers.empty and not waiting:
        return Finding(claim, paper, "no per-layer records", INCONCLUSIVE)
    rows = []
    for (ds, s), part in (layers.groupby(["dataset", "sparsity"]) if len(layers) else []):
        if (ds, s) in waiting:
            continue                                    # a method still to come could change the row
        wide = part.pivot_table(index="param", columns="method", values="layer_sparsity")
        have = [m for m in methods if m in wide.columns]
        if len(have) < 2:
            continue
        corr = wide.corr()
        pair = min(corr.loc[a, b] for i, a in enumerate(have) for b in have[i + 1:])
        base = max(abs(corr.loc[baseline, m]) for m in have) if baseline in wide.columns else np.nan
        base = 0.0 if pd.isna(base) else base       # random's per-layer sparsity is ~constant: no correlation
        rows.append((ds, s, pair, base))
    if not rows and not waiting:
        return Finding(claim, paper, "fewer than two of the methods at a common level", INCONCLUSIVE)
    ok = [r for r in rows if r[2] >= min_corr and r[2] - r[3] >= gap]
    bad = [r for r in rows if r[2] < r[3] + gap / 2]
    n = len(rows) + len(waiting)
    measured = _awaiting("; ".join(f"{ds} {s:.0%}: min r = {p:.3f} (random: {b:.2f})" for ds, s, p, b in rows),
                         len(waiting))
    verdict = (REPRODUCED if len(ok) == len(rows) and not waiting else NOT_REPRODUCED if len(bad) * 2 > n
               else INCONCLUSIVE)
    return Finding(claim, paper, measured, verdict)


def omp_before_collapse(table: pd.DataFrame, layers: pd.DataFrame, task: str = "arithmetic",
                        above: float = 0.36, pretrained_prefix: str = "embedder.",
                        missing: pd.DataFrame | None = None) -> Finding:
    """Appendix B: OMP-before collapses above 36 % on arithmetic (accuracy below COLLAPSE) because global
    magnitude pruning of the pretrained model empties its deep, randomly initialised layers (some
    parameter outside the pretrained embedder ≥ 99 % pruned)."""
    claim = f"App. B: OMP-before collapses above {above:.0%} on {task} (deep layers emptied)"
    paper = "Appendix B: ≈ 0 accuracy above 36 %, the non-encoder layers pruned away"
    c = curves(table)
    c = c[(c["task"] == task) & (c["method"] == "omp_before") & (c["sparsity"] > above)]
    absent = _absent(missing, ("omp_before",))
    u = int(((absent["task"] == task) & (absent["sparsity"] > above)).sum())
    if c.empty and not u:
        return Finding(claim, paper, f"no OMP-before run above {above:.0%}", INCONCLUSIVE)
    collapsed = c[c["value"] < COLLAPSE]
    parts = []
    emptied = 0
    for r in c.itertuples():
        lw = layers[(layers["task"] == task) & (layers["dataset"] == r.dataset) & (layers["method"] == "omp_before")
                    & (layers["sparsity"] == r.sparsity) & ~layers["param"].str.startswith(pretrained_prefix)]
        n_empty = int((lw["layer_sparsity"] >= EMPTY).sum())
        emptied += n_empty > 0
        parts.append(f"{r.dataset} {r.sparsity:.0%}: {r.value:.1f} % ({n_empty} new-model tensors emptied)")
    measured = _awaiting("; ".join(parts), u)
    if u:
        verdict = INCONCLUSIVE                          # every point must collapse, or none
    elif len(collapsed) == len(c) and emptied == len(c):
        verdict = REPRODUCED
    elif collapsed.empty:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Finding(claim, paper, measured, verdict)


def protein_fails_early(table: pd.DataFrame, above: float = 0.2, task: str = "protein") -> Finding:
    """Fig. 3 ①: sparse ESM networks degrade whenever sparsity exceeds `above`. Over every (dataset, method,
    level above `above`) point of `task`, reproduced when at least two thirds fall below dense by more than
    the margin, not reproduced when at most a third do, inconclusive between (or without records)."""
    claim = f"Fig. 3 ①: protein models fail above {above:.0%} sparsity ({task})"
    paper = "§4.3 ①: every sparse ESM-1B (attention and FFN pruned only) degrades significantly above 20 %"
    c = _curves(table)
    c = c[(c["task"] == task) & (c["sparsity"] > above + 1e-9)]
    if c.empty:
        return Finding(claim, paper, f"no {task} run above {above:.0%} with a dense band", INCONCLUSIVE)
    fails = c["value"] < c["dense"] - c["margin"]
    parts = [f"{ds} ({model}): {int(fails[g.index].sum())} of {len(g)} points fail, mean "
             f"{(g['value'] - g['dense']).mean():+.1f} vs dense {g['dense'].iloc[0]:.1f} (margin {g['margin'].iloc[0]:.1f})"
             for (ds, model), g in c.groupby(["dataset", "model"])]
    share = float(fails.mean())
    verdict = REPRODUCED if share >= 2 / 3 else NOT_REPRODUCED if share <= 1 / 3 else INCONCLUSIVE
    return Finding(claim, paper, "; ".join(parts), verdict)


def module_sensitivity(modules: pd.DataFrame) -> Finding:
    """Table 1: OMP-after at 5 % on any subset of ESM's modules damages it. `modules` is
    `results.module_table` (gap below dense, noise, within_noise per subset): reproduced when every subset
    is below dense beyond the noise, not reproduced when none is, inconclusive otherwise."""
    claim = "Table 1: 5 % OMP-after on any module subset hurts the protein model"
    paper = "Table 1: ESM-1B on HP-S²C2, dense 94.68, every module subset 92.55-93.62 (one or two test proteins)"
    dense = modules[modules["modules"] == "dense"]["ours"] if len(modules) else pd.Series(dtype=float)
    rows = modules[(modules["modules"] != "dense") & modules["within_noise"].notna()] if len(modules) else modules
    if dense.isna().all() or rows.empty:
        return Finding(claim, paper, "no dense and module-subset records", INCONCLUSIVE)
    hurt = (rows["gap"] > rows["noise"]).to_numpy()
    measured = (f"dense {dense.iloc[0]:.2f}; " + "; ".join(
        f"{r.modules}: {r.ours:.2f} ({-r.gap:+.2f}, noise ±{r.noise:.2f})" for r in rows.itertuples()))
    verdict = REPRODUCED if hurt.all() else NOT_REPRODUCED if not hurt.any() else INCONCLUSIVE
    return Finding(claim, paper, measured, verdict)


def obert_beats_lth(roadmap: pd.DataFrame, table: pd.DataFrame, level: float = 0.6723) -> Finding:
    """C.2 / Figure 9: oBERT inside IMP with LR rewinding and distillation (`obert_imp`) beats LTH at `level`
    on the roadmap's records (`roadmap`, one scope for both), by more than the margin of the dense band in
    `table`: reproduced when above by more, not reproduced when below by more, inconclusive within."""
    claim = f"C.2: oBERT (+ LRR + KD) beats LTH at {level:.0%} (roadmap, scope encoder)"
    paper = "Fig. 9: on CSQA, oBERT with LRR and KD recovers most of the accuracy LTH loses at high sparsity"
    c = _curves(roadmap, band_from=table)
    at = c[(c["sparsity"] - level).abs() < 1e-3]
    rows = []
    for (_, ds, _), part in at.groupby(["task", "dataset", "model"]):
        v = part.set_index("method")["value"]
        if {"obert_imp", "lth"} <= set(v.index):
            rows.append((ds, v["obert_imp"], v["lth"], float(part["margin"].iloc[0])))
    if not rows:
        return Finding(claim, paper, f"no oBERT and LTH roadmap records at {level:.0%} with a dense band", INCONCLUSIVE)
    measured = "; ".join(f"{ds}: oBERT {o:.1f} vs LTH {lt:.1f} ({o - lt:+.1f}, margin {m:.1f})" for ds, o, lt, m in rows)
    above = sum(o - lt > m for _, o, lt, m in rows)
    below = sum(lt - o > m for _, o, lt, m in rows)
    verdict = REPRODUCED if above == len(rows) else NOT_REPRODUCED if below == len(rows) else INCONCLUSIVE
    return Finding(claim, paper, measured, verdict)


def obert_deeper_sparser(layers: pd.DataFrame, rival: str = "lth", min_rho: float = 0.5, gap: float = 0.3) -> Finding:
    """C.2 / Figure 10: oBERT's masks make deeper layers sparser, unlike magnitude pruning. Per dataset and
    level, the Spearman correlation of transformer-layer index and per-parameter sparsity, oBERT
    (`obert_imp`) against `rival`: reproduced when at most levels oBERT's is ≥ `min_rho` and above the rival's
    by `gap`; not reproduced when at most levels it is not above the rival's by a third of `gap`."""
    claim = f"C.2: oBERT prunes deeper layers harder ({rival} does not)"
    paper = "Fig. 10: oBERT's layerwise sparsity rises with depth; the magnitude methods' is flat"
    part = layers[(layers["layer"] >= 0) & layers["method"].isin(["obert_imp", rival])] if len(layers) else layers
    rows = []
    for (ds, s), g in part.groupby(["dataset", "sparsity"]) if len(part) else []:
        rho = {m: g[g["method"] == m][["layer", "layer_sparsity"]].corr(method="spearman").iloc[0, 1]
               for m in ("obert_imp", rival) if (g["method"] == m).sum() > 2}
        if len(rho) == 2:
            rows.append((ds, s, 0.0 if pd.isna(rho["obert_imp"]) else rho["obert_imp"],
                         0.0 if pd.isna(rho[rival]) else rho[rival]))
    if not rows:
        return Finding(claim, paper, f"no oBERT and {rival} per-layer records at a common level", INCONCLUSIVE)
    measured = "; ".join(f"{ds} {s:.0%}: depth-sparsity ρ oBERT {o:+.2f}, {rival} {r:+.2f}" for ds, s, o, r in rows)
    yes = sum(o >= min_rho and o - r >= gap for _, _, o, r in rows)
    no = sum(o - r < gap / 3 for _, _, o, r in rows)
    verdict = REPRODUCED if yes * 2 > len(rows) else NOT_REPRODUCED if no * 2 > len(rows) else INCONCLUSIVE
    return Finding(claim, paper, measured, verdict)


def lazy_same_mask(sim: pd.DataFrame, task: str = "commonsense", before: str = "omp_before",
                   after: tuple[str, ...] = POST, missing: pd.DataFrame | None = None) -> Finding:
    """§4.4 / C.1, the lazy regime: fine-tuning moves a pretrained model's weights so little that magnitude
    pruning before fine-tuning keeps the weights pruning after it keeps. Per dataset of `task` and level
    (`sim`: `analysis.similarity_table`): the kept-set Jaccard of `before` with OMP-after against the smallest
    Jaccard among the post-training methods `after` themselves — "the same solution" is as alike as those
    are, within `JACCARD_TOL`. Reproduced when every level is, not reproduced when most are not. Other
    tasks' levels are shown, not counted (arithmetic's tree decoder starts from a random init, not a
    pretrained model)."""
    claim = f"C.1 lazy regime: magnitude pruning before fine-tuning keeps what pruning after keeps ({task})"
    paper = ("§4.4: 'all magnitude-based pruning approaches, before, during, and after fine-tuning, tend to "
             "collapse to the same solution' (RoBERTa, CSQA)")
    waiting = {(r.dataset, r.sparsity) for r in _absent(missing, after + (before,)).itertuples() if r.task == task}
    rows = []
    for (tk, ds, s), part in (sim.groupby(["task", "dataset", "sparsity"]) if len(sim) else []):
        pair = {frozenset((r.a, r.b)): r.jaccard for r in part.itertuples()}
        mutual = [pair.get(frozenset((a, b)), np.nan) for i, a in enumerate(after) for b in after[i + 1:]]
        this = pair.get(frozenset((before, "omp_after")), np.nan)
        if (ds, s) in waiting or np.isnan(this) or np.isnan(mutual).all():
            continue
        rows.append((tk, ds, s, this, float(np.nanmin(mutual)), float(part["jaccard_random"].iloc[0])))
    ours = [r for r in rows if r[0] == task]
    text = lambda rs: "; ".join(f"{ds} {s:.0%}: {j:.2f} vs ≥ {m:.2f} (random {z:.2f})" for _, ds, s, j, m, z in rs)
    others = pd.DataFrame([r for r in rows if r[0] != task], columns=["task", "ds", "s", "j", "m", "z"])
    brief = "; ".join(f"{ds} {g['j'].min():.2f}–{g['j'].max():.2f} vs ≥ {g['m'].min():.2f}–{g['m'].max():.2f}"
                      for ds, g in others.groupby("ds"))              # other tasks: a range per dataset
    measured = _awaiting(f"Jaccard of {before} and omp_after vs among {'/'.join(after)}: " + (text(ours) or "none")
                         + (f"; not counted ({', '.join(sorted(set(others['task'])))}): {brief}"
                            if len(others) else ""), len(waiting))
    if not ours and not waiting:
        return Finding(claim, paper, measured, INCONCLUSIVE)
    yes = [r for r in ours if r[3] >= r[4] - JACCARD_TOL]
    n = len(ours) + len(waiting)
    verdict = (REPRODUCED if len(yes) == len(ours) and not waiting else
               NOT_REPRODUCED if (len(ours) - len(yes)) * 2 > n else INCONCLUSIVE)
    return Finding(claim, paper, measured, verdict)


def all_findings(table: pd.DataFrame, layers: pd.DataFrame, protein: pd.DataFrame | None = None,
                 modules: pd.DataFrame | None = None, roadmap: pd.DataFrame | None = None,
                 roadmap_layers: pd.DataFrame | None = None, missing: pd.DataFrame | None = None,
                 similarity: pd.DataFrame | None = None) -> pd.DataFrame:
    """The findings table of the report: one row per claim (claim, paper, measured, verdict). `table` and
    `layers` hold the reasoning sections (arithmetic, commonsense); `protein` the protein section's tidy
    table and `modules` its Table 1 (`results.module_table`): §4.3 makes other claims there, so its records
    do not enter the reasoning claims; `roadmap` / `roadmap_layers` the oBERT roadmap's records (Appendix C.2,
    `sweep.roadmap`), tidy and per layer; `missing` the reasoning grids' points without a record yet
    (`results.points`), so that no verdict is read off a half-computed grid; `similarity` the pairwise mask
    similarity of the reasoning records (`analysis.similarity_table`)."""
    arith = table[table["task"] == "arithmetic"]
    found = [
        difficulty(arith, missing=missing),
        post_beats_prior(table, missing),
        snip_no_better_than_random(table, missing),
        snip_embedding(layers, missing=missing),
        imp_not_better(table, missing=missing),
        layerwise_alike(layers, missing=missing),
        omp_before_collapse(table, layers, missing=missing),
        lazy_same_mask(similarity if similarity is not None else pd.DataFrame(), missing=missing),
        protein_fails_early(protein if protein is not None else table.iloc[:0]),
        module_sensitivity(modules if modules is not None else pd.DataFrame()),
        obert_beats_lth(roadmap if roadmap is not None else table.iloc[:0], table),
        obert_deeper_sparser(roadmap_layers if roadmap_layers is not None else layers.iloc[:0]),
    ]
    return pd.DataFrame([f.as_dict() for f in found], columns=["claim", "paper", "measured", "verdict"])


def floors(table: pd.DataFrame, wanted: dict[str, float]) -> pd.DataFrame:
    """Per dataset with a floor: the dense mean ± σ over its seeds against the floor the profile sets (the score
    a dense model must reach for the sparse curves to mean something), and whether it is met."""
    band = noise_band(table) if len(table) else pd.DataFrame(columns=["dataset", "dense", "sd", "seeds"])
    rows = []
    for ds, floor in wanted.items():
        b = band[band["dataset"] == ds]
        mean = float(b["dense"].iloc[0]) if len(b) else float("nan")
        rows.append({"dataset": ds, "dense": round(mean, 2), "sd": round(float(b["sd"].iloc[0]), 2) if len(b) else None,
                     "seeds": int(b["seeds"].iloc[0]) if len(b) else 0, "floor": floor,
                     "met": "yes" if mean >= floor else ("no" if len(b) else "no records yet")})
    return pd.DataFrame(rows, columns=["dataset", "dense", "sd", "seeds", "floor", "met"])


def budgets(status: pd.DataFrame, wanted: dict[str, dict]) -> pd.DataFrame:
    """Per budget of the profile (`budgets`: sections, core_hours, cuts) against `sweep.status`: records
    published of the grid, core-hours the trainings behind them cost (IMP rounds included), the whole grid
    projected at the mean so far, and whether it fits — measured once every record is in, projected before."""
    rows = []
    for name, b in wanted.items():
        part = status[status["section"].isin(b["sections"])] if len(status) else status
        records, grid = int(part["records"].sum()), int(part["grid"].sum())
        spent = float(part["core_hours"].sum())
        projected = part["projected_core_hours"]
        projected = float(projected.sum()) if len(part) and projected.notna().all() else float("nan")
        limit = float(b["core_hours"])
        if grid and records == grid:
            verdict = "within" if spent <= limit else f"over by {spent - limit:.1f}"
        elif np.isnan(projected):
            verdict = "not every dataset has a record yet"
        else:
            verdict = ("projected within" if projected <= limit else f"projected over by {projected - limit:.1f}")
        rows.append({"budget": name, "sections": ", ".join(b["sections"]), "records": records, "grid": grid,
                     "core_hours": round(spent, 2), "projected_core_hours": round(projected, 1),
                     "budget_core_hours": limit, "verdict": verdict, "cuts": b.get("cuts", "")})
    return pd.DataFrame(rows, columns=["budget", "sections", "records", "grid", "core_hours", "projected_core_hours",
                                       "budget_core_hours", "verdict", "cuts"])
