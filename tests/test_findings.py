"""The findings rules on synthetic tables whose verdict is known (no record is read)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from smc_lib import findings as F
from smc_lib import results
from smc_lib.tasks.protein.task import MODULE_SUBSETS, module_patterns

LEVELS = (0.2, 0.488, 0.6723, 0.7903)
METHODS = ("omp_after", "random_after", "lth", "gmp", "omp_before", "random_before", "snip", "snip_rigl",
           "random_rigl", "omp_rigl")


def table(curve, datasets=("mawps", "svamp"), task="arithmetic", dense=(80.0, 80.5, 79.5)) -> pd.DataFrame:
    """A tidy table: dense seeds at `dense`, each method's value at each level from curve(ds, method, s)."""
    rows = []
    for ds in datasets:
        for seed, v in enumerate(dense):
            rows.append(dict(task=task, dataset=ds, model="gts", method="dense", sparsity=0.0, seed=seed, value=v))
        for m in METHODS:
            for s in LEVELS:
                rows.append(dict(task=task, dataset=ds, model="gts", method=m, sparsity=s, seed=0,
                                 value=curve(ds, m, s)))
    t = pd.DataFrame(rows)
    return t.assign(fold=pd.array([None] * len(t), dtype="Int64"), metric="accuracy", achieved_sparsity=t["sparsity"],
                    achieved_sparsity_all=t["sparsity"], wall_s=1.0)


def test_noise_band_is_two_sigma_of_the_dense_seeds_or_one_point():
    band = F.noise_band(table(lambda *a: 0.0))
    assert band["margin"].iloc[0] == pytest.approx(2 * np.std([80.0, 80.5, 79.5], ddof=1))
    one = F.noise_band(table(lambda *a: 0.0, dense=(80.0,)))
    assert one["margin"].iloc[0] == 1.0


def test_difficulty_reproduced_when_the_hard_task_fails_earlier():
    # MAWPS fails at 79 %, SVAMP at 49 % for every method
    t = table(lambda ds, m, s: 80.0 - (50 if (ds == "svamp" and s > 0.4) or s > 0.75 else 0))
    assert F.difficulty(t).verdict == F.REPRODUCED


def test_difficulty_not_reproduced_when_the_hard_task_fails_later():
    t = table(lambda ds, m, s: 80.0 - (50 if (ds == "mawps" and s > 0.4) or s > 0.75 else 0))
    assert F.difficulty(t).verdict == F.NOT_REPRODUCED


def test_difficulty_says_when_both_fail_at_the_grids_lowest_level():
    # every method fails at 20 % on both: equal, and the measurement says the grid cannot order them
    f = F.difficulty(table(lambda ds, m, s: 30.0))
    assert f.verdict == F.INCONCLUSIVE and f"equal for {len(METHODS)} ({len(METHODS)} of them at the grid's " \
        "lowest level, 20%" in f.measured
    # equal at 49 % is an equal reading, not a censored one
    assert "lowest level" not in F.difficulty(table(lambda ds, m, s: 30.0 if s > 0.4 else 80.0)).measured


def test_difficulty_inconclusive_when_nothing_fails():
    assert F.difficulty(table(lambda *a: 80.0)).verdict == F.INCONCLUSIVE


def test_post_beats_prior():
    good = table(lambda ds, m, s: 80.0 - (0 if m in F.POST else 30 * s))
    assert F.post_beats_prior(good).verdict == F.REPRODUCED
    bad = table(lambda ds, m, s: 80.0 - (30 * s if m in F.POST else 0))
    assert F.post_beats_prior(bad).verdict == F.NOT_REPRODUCED
    assert F.post_beats_prior(table(lambda *a: 80.0)).verdict == F.INCONCLUSIVE


def test_snip_no_better_than_random():
    assert F.snip_no_better_than_random(table(lambda ds, m, s: 50.0)).verdict == F.REPRODUCED
    t = table(lambda ds, m, s: 70.0 if m == "snip" else 50.0)
    assert F.snip_no_better_than_random(t).verdict == F.NOT_REPRODUCED


def test_imp_not_better():
    assert F.imp_not_better(table(lambda ds, m, s: 60.0)).verdict == F.REPRODUCED
    t = table(lambda ds, m, s: 75.0 if m == "lth" else 60.0)
    assert F.imp_not_better(t).verdict == F.NOT_REPRODUCED


def layers(spars, methods=("lth", "omp_after", "gmp", "random_after", "snip", "omp_before"), level=0.488):
    """Per-parameter rows: spars(method, i) gives parameter i's sparsity (param 0 is the embedding)."""
    rows = []
    for m in methods:
        for i in range(12):
            rows.append(dict(task="commonsense", dataset="csqa", model="minilm", method=m, sparsity=level,
                             param=("embeddings.word_embeddings.weight" if i == 0 else f"layer.{i}.w"),
                             layer=-1 if i == 0 else i, kind="embedding" if i == 0 else "ffn", numel=1000,
                             layer_sparsity=spars(m, i)))
    return pd.DataFrame(rows)


def test_layerwise_alike():
    rng = np.random.default_rng(0)
    shape = np.linspace(0.2, 0.8, 12)
    alike = layers(lambda m, i: 0.488 + rng.normal(0, 0.01) if m == "random_after" else shape[i] + rng.normal(0, 0.01))
    assert F.layerwise_alike(alike).verdict == F.REPRODUCED
    apart = layers(lambda m, i: shape[i] if m == "lth" else shape[::-1][i] if m == "gmp" else 0.488 + rng.normal(0, .01))
    assert F.layerwise_alike(apart).verdict == F.NOT_REPRODUCED


def test_snip_embedding():
    hot = layers(lambda m, i: (0.99 if i == 0 else 0.45) if m == "snip" else 0.488)
    assert F.snip_embedding(hot).verdict == F.REPRODUCED
    cold = layers(lambda m, i: (0.1 if i == 0 else 0.52) if m == "snip" else 0.488)
    assert F.snip_embedding(cold).verdict == F.NOT_REPRODUCED


def test_omp_before_collapse():
    t = table(lambda ds, m, s: 0.5 if m == "omp_before" and s > 0.36 else 78.0)
    lw = pd.concat([layers(lambda m, i: 1.0 if i > 6 else 0.3, methods=("omp_before",), level=s)
                    for s in LEVELS]).assign(task="arithmetic", model="gts")
    lw = pd.concat([lw.assign(dataset=ds) for ds in ("mawps", "svamp")])
    assert F.omp_before_collapse(t, lw).verdict == F.REPRODUCED
    fine = table(lambda ds, m, s: 78.0)
    assert F.omp_before_collapse(fine, lw).verdict == F.NOT_REPRODUCED
    # every level above 36 % must collapse (or none): one still missing leaves it open
    pts = absent(["omp_before"], LEVELS[-1:], datasets=("svamp",))
    f = F.omp_before_collapse(drop(t, pts), lw, missing=pts)
    assert f.verdict == F.INCONCLUSIVE and "1 undecided" in f.measured


def test_all_findings_has_a_verdict_per_claim():
    t = table(lambda ds, m, s: 80.0 - 40 * s)
    out = F.all_findings(t, pd.DataFrame(columns=["task", "dataset", "model", "method", "sparsity", "param", "layer",
                                                  "kind", "numel", "layer_sparsity"]))
    assert len(out) == 12 and set(out["verdict"]) <= {F.REPRODUCED, F.NOT_REPRODUCED, F.INCONCLUSIVE}


def test_floors_compare_the_dense_mean_with_the_profiles_floor():
    t = table(lambda *a: 50.0, datasets=("mawps",), dense=(76.0, 74.0, 75.5))
    out = F.floors(t, {"mawps": 75, "svamp": 20}).set_index("dataset")
    assert out.loc["mawps", "met"] == "yes" and out.loc["mawps", "seeds"] == 3
    assert out.loc["svamp", "met"] == "no records yet"
    assert F.floors(t, {"mawps": 80}).iloc[0]["met"] == "no"


def test_protein_fails_early_reads_the_points_above_twenty_percent():
    def prot(curve):
        return table(curve, datasets=("hp-s2c2",), task="protein")
    assert F.protein_fails_early(prot(lambda ds, m, s: 80.0 - (20 if s > 0.2 else 0))).verdict == F.REPRODUCED
    assert F.protein_fails_early(prot(lambda ds, m, s: 80.0)).verdict == F.NOT_REPRODUCED
    late = prot(lambda ds, m, s: 60.0 if s > 0.7 else 80.0)                 # only the top level of 3 fails
    assert F.protein_fails_early(late).verdict == F.NOT_REPRODUCED
    mixed = prot(lambda ds, m, s: 60.0 if s > 0.4 and m in METHODS[:5] else 80.0)   # half the points fail
    assert F.protein_fails_early(mixed).verdict == F.INCONCLUSIVE
    assert F.protein_fails_early(table(lambda *a: 0.0)).verdict == F.INCONCLUSIVE    # no protein records


def _module_records(dense=(80.0, 81.0, 79.0), subset=lambda name, seed: 80.0):
    """Fake records as the esm_modules notebook makes them: dense runs and OMP-after at a module subset."""
    recs = [SimpleNamespace(config={"method": "dense"}, metrics={"accuracy": v}) for v in dense]
    for name in MODULE_SUBSETS:
        recs += [SimpleNamespace(config={"method": "omp_after", "scope_patterns": {"include": module_patterns(name)}},
                                 metrics={"accuracy": subset(name, seed)}) for seed in range(len(dense))]
    return recs


def test_module_table_names_each_subset_and_its_noise():
    paper = pd.DataFrame({"modules": ["dense", "Q,K"], "value": [94.68, 92.55]})
    t = results.module_table(_module_records(subset=lambda name, seed: 70.0 + seed), paper).set_index("modules")
    assert list(t.index) == ["dense", *MODULE_SUBSETS] and (t["seeds"] == 3).all()
    assert t.loc["dense", "ours"] == 80.0 and t.loc["Q,K", "ours"] == 71.0 and t.loc["Q,K", "gap"] == 9.0
    assert t.loc["Q,K", "ci95"] == pytest.approx(1.96 * 1.0 / np.sqrt(3))
    assert t.loc["Q,K", "paper"] == 92.55 and np.isnan(t.loc["K,V", "paper"])
    assert not t.loc["Q,K", "within_noise"] and t.loc["Q,K", "noise"] == pytest.approx(max(1.0, 2 * 1.96 / np.sqrt(3)))


def test_module_sensitivity_needs_every_subset_beyond_the_noise():
    hurt = results.module_table(_module_records(subset=lambda name, seed: 70.0))
    assert F.module_sensitivity(hurt).verdict == F.REPRODUCED
    same = results.module_table(_module_records(subset=lambda name, seed: 80.5))
    assert F.module_sensitivity(same).verdict == F.NOT_REPRODUCED
    some = results.module_table(_module_records(subset=lambda name, seed: 70.0 if name == "Q,K" else 80.0))
    assert F.module_sensitivity(some).verdict == F.INCONCLUSIVE
    assert F.module_sensitivity(pd.DataFrame()).verdict == F.INCONCLUSIVE
    assert F.module_sensitivity(results.module_table(_module_records(dense=()))).verdict == F.INCONCLUSIVE


def _status(records, grid, core, projected):
    return pd.DataFrame({"section": ["arithmetic", "arithmetic", "protein"], "dataset": ["mawps", "svamp", "hp-s"],
                         "records": records, "grid": grid, "core_hours": core, "projected_core_hours": projected})


def test_budgets_project_until_the_grid_is_complete_then_measure():
    wanted = {"science": {"sections": ["arithmetic"], "core_hours": 20, "cuts": "none"},
              "protein": {"sections": ["protein"], "core_hours": 6}}
    half = F.budgets(_status([20, 10, 43], [43, 43, 43], [5.0, 4.0, 5.0], [10.8, 17.2, 5.0]), wanted).set_index("budget")
    assert half.loc["science", "records"] == 30 and half.loc["science", "grid"] == 86
    assert half.loc["science", "verdict"] == "projected over by 8.0" and half.loc["science", "cuts"] == "none"
    assert half.loc["protein", "verdict"] == "within"                     # complete: measured, not projected
    done = F.budgets(_status([43, 43, 43], [43, 43, 43], [12.0, 9.5, 7.0], [12.0, 9.5, 7.0]), wanted).set_index("budget")
    assert done.loc["science", "verdict"] == "over by 1.5" and done.loc["protein", "verdict"] == "over by 1.0"
    none = F.budgets(_status([5, 0, 0], [43, 43, 43], [1.0, 0.0, 0.0], [8.0, None, None]), wanted).set_index("budget")
    assert none.loc["science", "verdict"] == "not every dataset has a record yet"


def _roadmap(lth, obert):
    """Roadmap records on CSQA as a tidy table: LTH and oBERT-in-IMP at each level."""
    rows = [dict(task="commonsense", dataset="csqa", model="minilm", method=m, sparsity=s, seed=0, value=f(s))
            for m, f in (("lth", lth), ("obert_imp", obert)) for s in LEVELS]
    t = pd.DataFrame(rows)
    return t.assign(fold=pd.array([None] * len(t), dtype="Int64"), metric="accuracy", achieved_sparsity=t["sparsity"],
                    achieved_sparsity_all=t["sparsity"], wall_s=1.0)


def test_obert_beats_lth_reads_the_level_against_the_dense_band():
    grid = table(lambda *a: 40.0, datasets=("csqa",), task="commonsense", dense=(42.0, 41.0, 42.5))
    grid["model"] = "minilm"
    margin = F.noise_band(grid)["margin"].iloc[0]
    assert F.obert_beats_lth(_roadmap(lambda s: 30.0, lambda s: 30.0 + 2 * margin), grid).verdict == F.REPRODUCED
    assert F.obert_beats_lth(_roadmap(lambda s: 30.0, lambda s: 30.0 - 2 * margin), grid).verdict == F.NOT_REPRODUCED
    assert F.obert_beats_lth(_roadmap(lambda s: 30.0, lambda s: 30.0 + margin / 2), grid).verdict == F.INCONCLUSIVE
    # only the 67 % point counts: oBERT far ahead elsewhere does not make it
    assert F.obert_beats_lth(_roadmap(lambda s: 30.0, lambda s: 30.0 if s == 0.6723 else 50.0), grid).verdict \
        == F.INCONCLUSIVE
    assert F.obert_beats_lth(_roadmap(lambda s: 30.0, lambda s: 40.0).iloc[:0], grid).verdict == F.INCONCLUSIVE


def _depth(obert, lth):
    """Per-parameter rows of two roadmap runs: layers 0-5, two parameters each, sparsity from f(layer)."""
    rows = [dict(task="commonsense", dataset="csqa", model="minilm", method=m, sparsity=0.488, param=f"layer.{i}.{k}",
                 layer=i, kind="ffn", numel=100, layer_sparsity=f(i)) for m, f in (("obert_imp", obert), ("lth", lth))
            for i in range(6) for k in ("a", "b")]
    rows.append(dict(task="commonsense", dataset="csqa", model="minilm", method="obert_imp", sparsity=0.488,
                     param="embeddings.w", layer=-1, kind="embedding", numel=100, layer_sparsity=0.0))
    return pd.DataFrame(rows)


def test_obert_deeper_sparser_compares_depth_trends():
    rising, flat = (lambda i: 0.3 + 0.05 * i), (lambda i: 0.488 + 0.001 * (-1) ** i)
    assert F.obert_deeper_sparser(_depth(rising, flat)).verdict == F.REPRODUCED
    assert F.obert_deeper_sparser(_depth(flat, flat)).verdict == F.NOT_REPRODUCED
    assert F.obert_deeper_sparser(_depth(rising, rising)).verdict == F.NOT_REPRODUCED       # LTH rises as much
    assert F.obert_deeper_sparser(_depth(rising, flat).query("method == 'lth'")).verdict == F.INCONCLUSIVE


# ------------------------------------------------------------------------- a grid still being computed
def absent(methods, levels=LEVELS, datasets=("mawps", "svamp"), task="arithmetic", model="gts") -> pd.DataFrame:
    """The grid points with no record yet, as `results.points` gives them for `sweep.collect`'s missing."""
    return pd.DataFrame([dict(task=task, dataset=ds, model=model, method=m, sparsity=s, seed=0, fold=None)
                         for ds in datasets for m in methods for s in levels])


def drop(t: pd.DataFrame, pts: pd.DataFrame) -> pd.DataFrame:
    """`t` without the records of `pts`."""
    keys = ["task", "dataset", "model", "method", "sparsity"]
    hit = t[keys].merge(pts[keys].drop_duplicates(), how="left", indicator=True)["_merge"].eq("both").to_numpy()
    return t[~hit]


def test_results_points_lists_the_run_keys_of_configs():
    from smc_lib.runs import RunConfig
    pts = results.points([RunConfig("arithmetic", "mawps", "gts", "lth", 0.7903, fold=0),
                          RunConfig("commonsense", "csqa", "minilm", "snip", 0.2)])
    assert list(pts.columns) == results.RUN_KEYS and pts["sparsity"].tolist() == [0.7903, 0.2]
    assert pts["fold"].tolist()[0] == 0 and pd.isna(pts["fold"].tolist()[1])


def test_difficulty_reads_no_failure_where_a_curve_was_not_run():
    # MAWPS fails at 49 % everywhere; SVAMP has only its 20 % points, which hold: SVAMP's failing sparsity
    # is unknown (above 20 %), not "never", so neither a higher nor a lower reading
    full = table(lambda ds, m, s: 30.0 if ds == "mawps" and s > 0.4 else 80.0)
    pts = absent(METHODS, LEVELS[1:], datasets=("svamp",))
    for missing in (None, pts):
        f = F.difficulty(drop(full, pts), missing=missing)
        assert f.verdict == F.INCONCLUSIVE and "higher for 0" in f.measured
    assert F.difficulty(full).verdict == F.NOT_REPRODUCED            # the whole grid: SVAMP never fails


def test_difficulty_keeps_a_verdict_no_missing_point_can_change():
    # SVAMP fails at 20 % (its other levels still missing), MAWPS holds everywhere: lower whatever comes
    full = table(lambda ds, m, s: 30.0 if ds == "svamp" else 80.0)
    pts = absent(METHODS, LEVELS[1:], datasets=("svamp",))
    assert F.difficulty(drop(full, pts), missing=pts).verdict == F.REPRODUCED
    # a MAWPS point still missing below SVAMP's failure could make MAWPS fail first
    full = table(lambda ds, m, s: 30.0 if ds == "svamp" and s > 0.4 else 80.0)
    pts = absent(METHODS, LEVELS[:1], datasets=("mawps",))
    f = F.difficulty(drop(full, pts), missing=pts)
    assert f.verdict == F.INCONCLUSIVE and "awaiting records" in f.measured


def test_post_beats_prior_waits_for_the_pairs_still_missing():
    full = table(lambda ds, m, s: 80.0 - (0 if m in F.POST else 30 * s))
    pts = absent([m for m in METHODS if m not in ("omp_after", "omp_before")])
    part = drop(full, pts)
    assert F.post_beats_prior(part).verdict == F.REPRODUCED                 # as if the grid were these two
    f = F.post_beats_prior(part, missing=pts)
    assert f.verdict == F.INCONCLUSIVE and "112 undecided" in f.measured    # 8 of 120 pairs read
    assert F.post_beats_prior(full, missing=absent([])).verdict == F.REPRODUCED
    # losses no outcome of the missing pairs can outweigh
    bad = table(lambda ds, m, s: 80.0 - (30 * s if m in F.POST else 0))
    pts = absent(["snip_rigl"], LEVELS[:1])
    assert F.post_beats_prior(drop(bad, pts), missing=pts).verdict == F.NOT_REPRODUCED


def test_snip_no_better_than_random_waits_for_its_pairs():
    full = table(lambda ds, m, s: 50.0)
    pts = absent(["snip"], LEVELS[2:])
    assert F.snip_no_better_than_random(drop(full, pts), missing=pts).verdict == F.INCONCLUSIVE
    assert F.snip_no_better_than_random(drop(full, pts)).verdict == F.REPRODUCED


def test_imp_not_better_reads_the_grids_highest_levels_not_the_highest_run():
    full = table(lambda ds, m, s: 60.0)
    pts = absent(["lth"], LEVELS[1:])                                       # only LTH's 20 % is in
    f = F.imp_not_better(drop(full, pts), missing=pts)
    assert f.verdict == F.INCONCLUSIVE
    assert "mawps 79%: awaiting records" in f.measured and "20%" not in f.measured
    # LTH above OMP-after while GMP is still missing: GMP could beat it, so undecided
    ahead = table(lambda ds, m, s: 75.0 if m == "lth" else 60.0)
    pts = absent(["gmp"])
    assert F.imp_not_better(drop(ahead, pts), missing=pts).verdict == F.INCONCLUSIVE
    # LTH not above OMP-after: no GMP to come can make LTH better
    assert F.imp_not_better(drop(full, pts), missing=pts).verdict == F.REPRODUCED


def test_layer_claims_wait_for_their_methods():
    rng = np.random.default_rng(0)
    shape = np.linspace(0.2, 0.8, 12)
    alike = layers(lambda m, i: 0.488 + rng.normal(0, 0.01) if m == "random_after" else shape[i] + rng.normal(0, 0.01))
    gmp = absent(["gmp"], (0.488,), datasets=("csqa",), task="commonsense", model="minilm")
    f = F.layerwise_alike(alike[alike["method"] != "gmp"], missing=gmp)
    assert f.verdict == F.INCONCLUSIVE and "1 undecided" in f.measured
    hot = layers(lambda m, i: (0.99 if i == 0 else 0.45) if m == "snip" else 0.488)
    more = absent(["snip"], (0.2, 0.6723, 0.7903), datasets=("csqa",), task="commonsense", model="minilm")
    assert F.snip_embedding(hot, missing=more).verdict == F.INCONCLUSIVE       # 1 of 4 levels read
    assert F.snip_embedding(hot).verdict == F.REPRODUCED


def test_all_findings_passes_the_missing_points_to_every_grid_rule():
    full = table(lambda ds, m, s: 80.0 - 40 * s)
    pts = absent(METHODS, LEVELS[1:])
    empty = pd.DataFrame(columns=["task", "dataset", "model", "method", "sparsity", "param", "layer", "kind", "numel",
                                  "layer_sparsity"])
    out = F.all_findings(drop(full, pts), empty, missing=pts).set_index("claim")["verdict"]
    assert (out.iloc[:8] == F.INCONCLUSIVE).all()


def sim(jaccard, datasets=("csqa",), task="commonsense", levels=LEVELS) -> pd.DataFrame:
    """`analysis.similarity_table` rows: jaccard(ds, a, b, s) for every pair of the magnitude methods."""
    import itertools
    ms = ("gmp", "lth", "omp_after", "omp_before", "random_after")
    return pd.DataFrame([dict(a=a, b=b, sparsity=s, layer_corr=np.nan, jaccard=jaccard(ds, a, b, s),
                              jaccard_random=(1 - s) / (1 + s), task=task, dataset=ds)
                         for ds in datasets for s in levels for a, b in itertools.combinations(ms, 2)])


def test_lazy_same_mask_compares_before_and_after_with_the_post_methods_among_themselves():
    def lazy(ds, a, b, s):                     # every magnitude mask alike, random ones apart
        return (1 - s) / (1 + s) if "random_after" in (a, b) else 0.9 - 0.05 * s
    f = F.lazy_same_mask(sim(lazy))
    assert f.verdict == F.REPRODUCED and "csqa 49%" in f.measured
    def busy(ds, a, b, s):                     # OMP-before keeps other weights than the post methods
        return 0.5 if "omp_before" in (a, b) else lazy(ds, a, b, s)
    assert F.lazy_same_mask(sim(busy)).verdict == F.NOT_REPRODUCED
    # within the Jaccard's sampling tolerance of the post methods' own agreement: the same solution
    near = lambda ds, a, b, s: lazy(ds, a, b, s) - (F.JACCARD_TOL / 2 if "omp_before" in (a, b) else 0)
    assert F.lazy_same_mask(sim(near)).verdict == F.REPRODUCED
    # another task's levels are shown, not counted
    both = pd.concat([sim(lazy), sim(busy, datasets=("mawps",), task="arithmetic")])
    f = F.lazy_same_mask(both)
    assert f.verdict == F.REPRODUCED and "not counted (arithmetic): mawps 0.50–0.50 vs ≥ 0.86–0.89" in f.measured
    assert F.lazy_same_mask(both, task="arithmetic").verdict == F.NOT_REPRODUCED


def test_lazy_same_mask_waits_for_its_methods():
    lazy = lambda ds, a, b, s: 0.9
    waiting = absent(["omp_before"], (0.7903,), datasets=("csqa",), task="commonsense", model="minilm")
    f = F.lazy_same_mask(sim(lazy, levels=LEVELS[:3]), missing=waiting)
    assert f.verdict == F.INCONCLUSIVE and "1 undecided" in f.measured
    busy = lambda ds, a, b, s: 0.5 if "omp_before" in (a, b) else 0.9
    # 3 of 4 levels not alike: no missing record can change it
    assert F.lazy_same_mask(sim(busy, levels=LEVELS[:3]), missing=waiting).verdict == F.NOT_REPRODUCED
    assert F.lazy_same_mask(pd.DataFrame()).verdict == F.INCONCLUSIVE


def test_layerwise_table_labels_layers_by_name_not_by_the_records_stale_kind():
    """Arithmetic records written before the classifier fix call every weight of GTS's `embedder` (a whole
    MiniLM) an embedding; the table reads kind and layer off the name, so the SNIP-embedding finding measures
    the embedding tables, not the encoder."""
    from types import SimpleNamespace

    from smc_lib import plots

    stale = [{"param": "embedder.model.embeddings.word_embeddings.weight", "layer": -1, "kind": "embedding",
              "numel": 100, "sparsity": 0.9},
             {"param": "embedder.model.encoder.layer.0.attention.self.query.weight", "layer": 0, "kind": "embedding",
              "numel": 100, "sparsity": 0.1}]
    rec = SimpleNamespace(config=dict(task="arithmetic", dataset="mawps", model="gts", method="snip", sparsity=0.5),
                          layerwise=stale)
    t = plots.layerwise_table([rec]).set_index("param")
    assert t["kind"].tolist() == ["embedding", "attention"] and t["layer"].tolist() == [-1, 0]
    assert F._kind_sparsity(t.reset_index(), "embedding")["kind_sparsity"].tolist() == [0.9]
