"""Charts shared by every section notebook (altair), drawn beside the paper's published numbers.

`sparsity_grid` is the paper's main figure shape (Figures 1-4 of Liu, Chen et al., ICLR 2023):
a panel per dataset (and model), x = sparsity, y = the task metric, a line per method, the dense
model as a horizontal rule, and the paper's curve for each method drawn faintly (dashed) beside ours
from `../shared/reference`. `layerwise_chart` is the Figures 6-8 shape: sparsity per layer.

Charts stay offline: importing this module selects altair's `svg` renderer (vl-convert draws the chart
in the kernel; JupyterLab and the nbconvert report show the SVG, no vega script from a CDN), and
`to_svg` / `save` write the same SVG for the DVC outputs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import altair as alt
import pandas as pd

from .results import curves, noise_band
from .scope import layer_index, param_kind

alt.renderers.enable("svg")
alt.data_transformers.disable_max_rows()

PAPER_FILES = {"arithmetic": "arithmetic_paper.csv"}  # every other task: figures_digitized.csv
DATASET_ALIASES = {"commonsenseqa": "csqa", "race (middle)": "race", "race-m": "race", "race (high)": "race-high",
                   "race-h": "race-high", "atlas": "meltome", "meltome atlas": "meltome"}
PAGE_WIDTH = 760          # pixels of panels a report page has room for in a row; wider rows are cut off
METHOD_ORDER = ["dense", "omp_after", "random_after", "lth", "gmp", "omp_before", "random_before", "snip",
                "snip_rigl", "random_rigl", "omp_rigl"]


def _dataset_id(name: str) -> str:
    key = str(name).strip().lower()
    return DATASET_ALIASES.get(key, key)


def reference(task: str, reference_dir: str | Path | None, models: Sequence[str] = (),
              metric: str = "accuracy") -> pd.DataFrame:
    """The paper's numbers for `task` as curves (task, dataset, model, method, sparsity, value, paper_model).

    Datasets are mapped to our ids (CommonsenseQA → csqa). A paper model matches ours by name
    (GTS ↔ gts); when none does (RoBERTa-large vs our MiniLM for commonsense) the paper's curve is drawn
    beside each of `models`. Empty when the folder or the file is absent.
    """
    cols = ["task", "dataset", "model", "method", "sparsity", "value", "paper_model"]
    path = Path(reference_dir or "") / PAPER_FILES.get(task, "figures_digitized.csv")
    if reference_dir is None or not path.exists():
        return pd.DataFrame(columns=cols)
    ref = pd.read_csv(path)
    if "task" not in ref:
        ref["task"] = task
    ref = ref[ref["task"] == task].rename(columns={"accuracy": "value"})
    if "metric" in ref:
        ref = ref[ref["metric"] == metric]
    ref = ref.assign(dataset=ref["dataset"].map(_dataset_id), paper_model=ref["model"])
    ours = {m.lower(): m for m in models}
    named = [m for m in ref["paper_model"].unique() if m.lower() in ours]
    parts = []
    for paper_model, part in ref.groupby("paper_model"):
        if paper_model.lower() in ours:
            parts.append(part.assign(model=ours[paper_model.lower()]))
        elif not named:  # no paper model shares a name with ours: draw the paper's beside each of ours
            parts += [part.assign(model=m) for m in models] or [part]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    return out[cols]


def sparsity_grid(table: pd.DataFrame, reference_dir: str | Path | None = None, metric: str | None = None,
                  title: str | None = None, width: int = 180, height: int = 150) -> alt.FacetChart:
    """Metric vs sparsity: a panel per model × dataset, a line per method, dense as a rule inside its noise
    band (mean ± max(1 point, 2 σ of the dense seeds): a point below the band fails), paper faint.

    `table` is the tidy results table (means over seeds and folds are taken here).
    """
    ours = curves(table, metric).assign(source="ours")
    band = noise_band(table, metric).assign(lo=lambda d: d["dense"] - d["margin"], hi=lambda d: d["dense"] + d["margin"])
    refs = [reference(t, reference_dir, sorted(part["model"].unique()), part["metric"].iloc[0])
            for t, part in ours.groupby("task")]
    paper = pd.concat(refs, ignore_index=True) if refs else pd.DataFrame()
    paper = paper[paper["dataset"].isin(ours["dataset"].unique())] if len(paper) else paper
    data = pd.concat([ours, paper.assign(source="paper"), band.assign(source="band", method="dense")],
                     ignore_index=True).reindex(columns=["dataset", "model", "method", "sparsity", "value", "source",
                                                         "lo", "hi"])
    y_title = (metric or (ours["metric"].iloc[0] if len(ours) else "value")) + " (%)"
    color = alt.Color("method:N", sort=METHOD_ORDER, title="method")
    x = alt.X("sparsity:Q", title="sparsity", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
    y = alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False))
    base = alt.Chart().encode(x=x, y=y, color=color)
    sparse_ours = (alt.datum.source == "ours") & (alt.datum.method != "dense")
    sparse_paper = (alt.datum.source == "paper") & (alt.datum.method != "dense")
    layers = [
        alt.Chart().mark_rect(color="grey", opacity=0.18).encode(y="lo:Q", y2="hi:Q")
            .transform_filter(alt.datum.source == "band"),
        base.mark_line(point=True).transform_filter(sparse_ours)
            .encode(tooltip=["method", "sparsity", alt.Tooltip("value:Q", format=".2f")]),
        base.mark_line(opacity=0.35, strokeDash=[4, 3]).transform_filter(sparse_paper),
        alt.Chart().mark_rule(color="black").encode(y="value:Q")
            .transform_filter((alt.datum.source == "ours") & (alt.datum.method == "dense")),
        alt.Chart().mark_rule(color="black", opacity=0.3, strokeDash=[4, 3]).encode(y="value:Q")
            .transform_filter((alt.datum.source == "paper") & (alt.datum.method == "dense")),
    ]
    chart = alt.layer(*layers, data=data).properties(width=width, height=height)
    facet = {"column": alt.Column("dataset:N", title=None)}
    if data["model"].nunique() > 1:
        facet["row"] = alt.Row("model:N", title=None)
    out = chart.facet(**facet).resolve_scale(y="independent")
    return out.properties(title=title or "accuracy vs sparsity (solid: ours, dashed: paper, rule and band: dense)")


def layerwise_table(results: Iterable) -> pd.DataFrame:
    """RunResults → per-parameter rows (param, layer, kind, numel, layer_sparsity) with the run's columns.
    Layer and kind are read off the parameter's name (`scope.layer_index`, `scope.param_kind`), not taken from
    the record: they label the record's numbers, and records written before a classifier fix keep their
    numbers but not their labels."""
    rows = []
    for r in results:
        c = r.config
        for row in r.layerwise:
            rows.append({"task": c["task"], "dataset": c["dataset"], "model": c["model"], "method": c["method"],
                         "sparsity": c["sparsity"], "param": row["param"], "layer": layer_index(row["param"]),
                         "kind": param_kind(row["param"]), "numel": int(row["numel"]), "layer_sparsity": float(row["sparsity"])})
    return pd.DataFrame(rows, columns=LAYER_COLUMNS)


LAYER_COLUMNS = ["task", "dataset", "model", "method", "sparsity", "param", "layer", "kind", "numel", "layer_sparsity"]


def fill_facet_grid(data: pd.DataFrame, row: list[str], column: str, value: str) -> pd.DataFrame:
    """`data` with one more row for each (row, column) facet cell it lacks, `value` empty (drawn as nothing)
    and every other field copied from the first row, so that x and colour scales gain no category.

    Vega-Lite misplaces the panels of a row × column facet that has a `sort` and an empty cell: the panels
    after the gap shift into it, under the wrong header (vega/vega-lite#5937, #8675, #9702, open). A method
    still missing one sparsity (a grid half computed) drew its curves a row too high; a full grid has no gap.
    """
    cells = data[row + [column]].drop_duplicates()
    full = data[row].drop_duplicates().merge(data[[column]].drop_duplicates(), how="cross")
    gaps = full.merge(cells, how="left", indicator=True).query("_merge == 'left_only'").drop(columns="_merge")
    if gaps.empty:
        return data
    pad = data.iloc[[0] * len(gaps)].reset_index(drop=True)             # keeps every column's dtype
    pad[row + [column]] = gaps.to_numpy()
    pad[value] = float("nan")
    return pd.concat([data, pad], ignore_index=True)


def placeholder(text: str, width: int = 400, height: int = 60) -> alt.Chart:
    """A chart that says why there is nothing to draw yet (e.g. no sparse records published)."""
    return alt.Chart(pd.DataFrame({"text": [text]})).mark_text(size=13).encode(text="text:N").properties(
        width=width, height=height)


def layerwise_chart(layerwise: pd.DataFrame, columns: int = 4, width: int = 160, height: int = 120) -> alt.FacetChart:
    """Sparsity per transformer layer and kind (attention / ffn / embedding / head), a panel per method;
    with several target sparsities, a row of panels per sparsity (one line per kind in every panel).

    Layer -1 holds the weights outside the numbered layers (embeddings, heads). Values are
    numel-weighted means over the parameters of a layer and kind.
    """
    if layerwise.empty:
        return placeholder("no sparse records yet: nothing to draw")
    lw = layerwise.assign(pruned=layerwise["layer_sparsity"] * layerwise["numel"])
    agg = (lw.groupby(["method", "sparsity", "layer", "kind"], as_index=False)
             .agg(pruned=("pruned", "sum"), numel=("numel", "sum")))
    agg["layer_sparsity"] = agg["pruned"] / agg["numel"]
    agg["target"] = agg["sparsity"].map(lambda s: f"target {s:.1%}")
    targets = sorted(agg["sparsity"].unique())
    if len(targets) > 1:
        agg = fill_facet_grid(agg, ["sparsity", "target"], "method", "layer_sparsity")
        width = min(width, max(72, PAGE_WIDTH // agg["method"].nunique()))   # a column per method fits the page
    chart = alt.Chart(agg).mark_line(point=True).encode(
        x=alt.X("layer:O", title="layer"),
        y=alt.Y("layer_sparsity:Q", title="sparsity", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("kind:N", legend=alt.Legend(orient="top")),
        tooltip=["method", "target", "layer", "kind", alt.Tooltip("layer_sparsity:Q", format=".1%"), "numel"],
    ).properties(width=width, height=height)
    title = "layerwise sparsity (layer -1: embeddings, heads and other weights outside the numbered layers)"
    if len(targets) == 1:
        return chart.facet(facet=alt.Facet("method:N", sort=METHOD_ORDER, title=None),
                           columns=columns).properties(title=f"{title}, target {targets[0]:.1%}")
    order = [f"target {s:.1%}" for s in targets]
    return chart.facet(row=alt.Row("target:N", sort=order, title=None),
                       column=alt.Column("method:N", sort=METHOD_ORDER, title=None)).properties(title=title)


def to_svg(chart: alt.TopLevelMixin) -> str:
    """Render a chart to an SVG string with vl-convert (no browser, no network)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_dict(), vl_version=_vl_version())


def save(chart: alt.TopLevelMixin, path: str | Path) -> Path:
    """Write a chart as .svg or .png (by suffix) for the DVC outputs and the report."""
    import vl_convert as vlc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        path.write_bytes(vlc.vegalite_to_png(chart.to_dict(), vl_version=_vl_version(), scale=2))
    else:
        path.write_text(to_svg(chart))
    return path


def spec_to_svg(spec: dict) -> str:
    """A vega-lite spec (e.g. a notebook's `application/vnd.vegalite.v6+json` output) as SVG."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(spec, vl_version=_vl_version(spec))


def _vl_version(spec: dict | None = None) -> str:
    schema = (spec or {}).get("$schema", "") or alt.SCHEMA_URL
    version = schema.rsplit("/", 1)[-1].removeprefix("v").removesuffix(".json").split(".")
    return "v" + "_".join(version[:2])


def relative_change_chart(change: pd.DataFrame, width: int = 300, height: int = 180) -> alt.Chart:
    """The lazy regime per weight matrix: ‖W_ft − W_pre‖ / ‖W_pre‖ (`change`: dataset, seed, param, group,
    relative_change, and position, the parameter's place in the model from input to output; the mean over
    seeds drawn), a panel per dataset on its own x axis, log-scaled, coloured by where the weights started
    (pretrained or a random init)."""
    if change.empty:
        return placeholder("no dense record with lazy-regime numbers yet")
    mean = change.groupby(["dataset", "param", "group", "position"], sort=False, as_index=False)["relative_change"].mean()
    return alt.Chart(mean).mark_point(filled=True, size=18).encode(
        x=alt.X("position:Q", title="weight matrix (input → output)"),
        y=alt.Y("relative_change:Q", title="‖W_ft − W_pre‖ / ‖W_pre‖", scale=alt.Scale(type="log"),
                axis=alt.Axis(format="~%")),
        color=alt.Color("group:N", title="started from"),
        tooltip=["dataset", "param", "group", alt.Tooltip("relative_change:Q", format=".2%")],
    ).properties(width=width, height=height).facet(column=alt.Column("dataset:N", title=None)).resolve_scale(
        x="independent").properties(title="how far dense fine-tuning moved each weight matrix (mean over seeds)")


def similarity_heatmap(sim: pd.DataFrame, measure: str = "jaccard", cell: int = 20) -> alt.Chart:
    """How alike two methods' masks are (`analysis.similarity` rows: a, b, sparsity, dataset, `measure`), as a
    method × method matrix per dataset (rows) and target sparsity (columns), the value written in each cell.
    `measure`: "layer_corr" (Pearson correlation of per-parameter sparsities, -1..1) or "jaccard" (overlap of
    the kept sets, 0..1; two random masks at sparsity s give (1 - s) / (1 + s), in each panel's title)."""
    if sim.empty:
        return placeholder("no pairs of sparse records yet: nothing to compare")
    both = pd.concat([sim, sim.rename(columns={"a": "b", "b": "a"})], ignore_index=True)
    both = both.assign(target=both.apply(
        lambda r: f"target {r['sparsity']:.1%}" + (f" (random {r['jaccard_random']:.2f})" if measure == "jaccard"
                                                   else ""), axis=1))
    methods = [m for m in METHOD_ORDER if m in set(both["a"])] + sorted(set(both["a"]) - set(METHOD_ORDER))
    domain = [-1, 1] if measure == "layer_corr" else [0, 1]
    base = alt.Chart().encode(x=alt.X("a:N", sort=methods, title=None), y=alt.Y("b:N", sort=methods, title=None))
    rects = base.mark_rect().encode(
        color=alt.Color(f"{measure}:Q", scale=alt.Scale(domain=domain, scheme="blueorange" if measure == "layer_corr"
                                                        else "blues"), title=measure),
        tooltip=["a", "b", "target", alt.Tooltip(f"{measure}:Q", format=".3f")])
    text = base.mark_text(fontSize=7).encode(text=alt.Text(f"{measure}:Q", format=".2f"), color=alt.condition(
        f"abs(datum.{measure}) > 0.7", alt.value("white"), alt.value("black")))
    return alt.layer(rects, text, data=both).properties(width=cell * len(methods), height=cell * len(methods)).facet(
        row=alt.Row("dataset:N", title=None), column=alt.Column("target:N", title=None))


def layerwise_overlay(layerwise: pd.DataFrame, width: int = 300, height: int = 160) -> alt.Chart:
    """Figures 6-8 as the paper draws them: per-parameter sparsity from input to output (the model's own
    parameter order), every method a line in the same panel, a row of panels per target sparsity — so
    methods that prune alike lie on one line. Each dataset (a column) numbers its own model's parameters
    from 0 on its own x axis: two models' parameter lists have nothing to share."""
    if layerwise.empty:
        return placeholder("no sparse records yet: nothing to draw")
    position = layerwise.groupby("dataset", sort=False)["param"].transform(
        lambda p: p.map({n: i for i, n in enumerate(dict.fromkeys(p))}))
    data = layerwise.assign(position=position, target=layerwise["sparsity"].map(lambda s: f"target {s:.1%}"))
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=12), strokeWidth=1.2).encode(
        x=alt.X("position:Q", title="parameter (input → output)"),
        y=alt.Y("layer_sparsity:Q", title="sparsity", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("method:N", sort=METHOD_ORDER),
        tooltip=["method", "target", "param", "kind", alt.Tooltip("layer_sparsity:Q", format=".1%"), "numel"],
    ).properties(width=width, height=height).facet(
        row=alt.Row("target:N", title=None), column=alt.Column("dataset:N", title=None)).resolve_scale(
        x="independent").properties(
        title="layerwise sparsity, methods overlaid (one line = the same per-layer pruning)")
