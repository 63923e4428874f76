"""The report: offline pages (no remote fetch), charts as inline SVG, the failing-sparsity summary."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from smc_lib import findings, plots, report, results
from smc_lib.errors import SMCError

METHODS = ("omp_after", "snip", "gmp", "lth")
REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"


def fake_table(task: str, datasets: tuple[str, ...], model: str, sparsities=(0.2, 0.36, 0.488)) -> pd.DataFrame:
    """A results table shaped like a real sweep's: dense at 80, method i losing 0.6·i points per sparsity step."""
    rng = np.random.default_rng(0)
    rows = []
    for ds in datasets:
        rows.append(dict(task=task, dataset=ds, model=model, method="dense", sparsity=0.0, seed=0, fold=None,
                         metric="accuracy", value=80.0, achieved_sparsity=0.0, wall_s=1.0))
        for i, m in enumerate(METHODS):
            for k, s in enumerate(sparsities):
                rows.append(dict(task=task, dataset=ds, model=model, method=m, sparsity=s, seed=0, fold=None,
                                 metric="accuracy", value=80.0 - 0.6 * i * k + rng.uniform(-0.1, 0.1),
                                 achieved_sparsity=s, wall_s=1.0))
    t = pd.DataFrame(rows, columns=results.COLUMNS)
    t["fold"] = t["fold"].astype("Int64")
    return t


def fake_layerwise(sparsity: float = 0.488) -> pd.DataFrame:
    rows = [dict(method=m, sparsity=sparsity, param=f"encoder.layer.{layer}.{kind}.weight", layer=layer, kind=kind,
                 numel=100, layer_sparsity=min(0.99, sparsity * (1 + 0.1 * layer)))
            for m in METHODS for layer in range(4) for kind in ("attention", "ffn")]
    return pd.DataFrame(rows)


def test_layerwise_chart_gives_each_sparsity_its_own_row_of_panels():
    one = plots.layerwise_chart(fake_layerwise(0.488)).to_dict()
    assert "facet" in one and "row" not in one.get("facet", {})
    both = plots.layerwise_chart(pd.concat([fake_layerwise(0.2), fake_layerwise(0.488)])).to_dict()
    assert both["facet"]["row"]["field"] == "target" and both["facet"]["column"]["field"] == "method"
    values = pd.DataFrame(next(iter(both["datasets"].values())))
    # one line per (target, method, kind): never two sparsities on one line
    assert (values.groupby(["target", "method", "kind", "layer"]).size() == 1).all()
    plots.to_svg(plots.layerwise_chart(pd.concat([fake_layerwise(0.2), fake_layerwise(0.488)])))


def drawn_panels(svg: str) -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]]:
    """From a rendered SVG: every point mark (its aria label, absolute x, y) and every header title (its text,
    absolute x, y), positions summed over the enclosing groups' translations."""
    import xml.etree.ElementTree as ET

    def shift(el):
        m = re.search(r"translate\(([-\d.e]+),\s*([-\d.e]+)\)", el.get("transform", ""))
        return (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)

    points, titles = [], []

    def walk(el, x, y):
        dx, dy = shift(el)
        x, y = x + dx, y + dy
        label = el.get("aria-label") or ""
        if el.get("aria-roledescription") == "point":
            points.append((label, x, y))
        elif label.startswith("Title text '"):
            titles.append((label[len("Title text '"):-1], x, y))
        for child in el:
            walk(child, x, y)

    walk(ET.fromstring(svg), 0.0, 0.0)
    return points, titles


def test_layerwise_chart_draws_each_panel_under_its_own_headers_when_a_method_lacks_a_sparsity():
    """A grid half computed (OMP-after still missing 20 %): Vega-Lite shifts the panels of a sorted row × column
    facet into an empty cell, so OMP-after's 48.8 % curve was drawn in the 20 % row. Every point must sit in
    the row of its target and the column of its method (nearest header, read off the rendered SVG)."""
    lw = pd.concat([fake_layerwise(0.2), fake_layerwise(0.488), fake_layerwise(0.672)])
    lw = lw[~((lw["method"] == "omp_after") & (lw["sparsity"] == 0.2)) & ~((lw["method"] == "gmp") & (lw["sparsity"] == 0.672))]
    points, titles = drawn_panels(plots.to_svg(plots.layerwise_chart(lw)))
    rows = [t for t in titles if t[0].startswith("target ")]
    columns = [t for t in titles if t[0] in METHODS]
    assert len(rows) == 3 and len(columns) == len(METHODS)
    assert len(points) == len(lw.groupby(["method", "sparsity", "layer", "kind"]))     # nothing drawn for a gap
    for label, x, y in points:
        fields = dict(part.split(": ", 1) for part in label.split("; "))
        assert min(rows, key=lambda t: abs(t[2] - y))[0] == fields["target"], label
        assert min(columns, key=lambda t: abs(t[1] - x))[0] == fields["method"], label


def test_layerwise_overlay_numbers_each_datasets_parameters_from_zero_on_its_own_axis():
    """Two models (datasets) share no parameters: each column's x runs over its own model, input → output."""
    a = fake_layerwise(0.488).assign(dataset="csqa")
    b = fake_layerwise(0.488).assign(dataset="mawps", param=lambda t: "embedder." + t["param"])
    b = b[b["param"].str.contains("layer.[0-2]")]                         # a shorter model
    spec = plots.layerwise_overlay(pd.concat([a, b])).to_dict()
    values = pd.DataFrame(next(iter(spec["datasets"].values())))
    for ds, part in values.groupby("dataset"):
        order = list(dict.fromkeys(part["param"]))
        assert sorted(part["position"].unique()) == list(range(len(order))), ds
        assert (part["position"] == part["param"].map(order.index)).all(), ds
    assert spec["resolve"]["scale"]["x"] == "independent"
    plots.to_svg(plots.layerwise_overlay(pd.concat([a, b])))


def test_similarity_heatmap_draws_each_pair_both_ways_per_dataset_and_level():
    sim = pd.DataFrame([dict(a="gmp", b="lth", sparsity=s, layer_corr=0.9, jaccard=0.8, jaccard_random=(1 - s) / (1 + s),
                             task="arithmetic", dataset=ds) for ds in ("mawps", "svamp") for s in (0.2, 0.488)])
    spec = plots.similarity_heatmap(sim, "jaccard").to_dict()
    values = pd.DataFrame(next(iter(spec["datasets"].values())))
    assert len(values) == 2 * len(sim)                                   # (a, b) and (b, a): a symmetric matrix
    assert set(zip(values["a"], values["b"])) == {("gmp", "lth"), ("lth", "gmp")}
    assert "target 48.8% (random 0.34)" in set(values["target"])         # the chance overlap beside each level
    assert spec["facet"]["row"]["field"] == "dataset" and spec["facet"]["column"]["field"] == "target"
    plots.to_svg(plots.similarity_heatmap(sim, "layer_corr"))


def test_relative_change_chart_places_each_matrix_where_the_model_has_it():
    change = pd.DataFrame([dict(dataset="mawps", seed=seed, param=p, group=g, position=i, relative_change=v * (1 + seed))
                           for seed in (0, 1) for i, (p, g, v) in enumerate(
                               [("embedder.w", "pretrained encoder", 0.02), ("decoder.w", "random-init layers", 0.7)])])
    spec = plots.relative_change_chart(change.iloc[::-1]).to_dict()     # rows in any order (a record's are sorted)
    values = pd.DataFrame(next(iter(spec["datasets"].values()))).set_index("param")
    assert values.loc["embedder.w", "position"] == 0 and values.loc["decoder.w", "position"] == 1
    assert values.loc["decoder.w", "relative_change"] == pytest.approx(1.05)   # the mean over seeds
    assert spec["resolve"]["scale"]["x"] == "independent"
    plots.to_svg(plots.relative_change_chart(change))


def fake_notebook(table: pd.DataFrame, title: str) -> nbformat.NotebookNode:
    """An 'executed' notebook as papermill leaves it: markdown, a grid chart, a layerwise chart, a table."""
    grid = plots.sparsity_grid(table, REFERENCE)
    lw = plots.layerwise_chart(fake_layerwise())
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {title}\nAccuracy vs sparsity, $s = 1 - 0.8^k$."),
        nbformat.v4.new_code_cell("plots.sparsity_grid(table)", outputs=[nbformat.v4.new_output(
            "display_data", data={"image/svg+xml": plots.to_svg(grid), "text/plain": "<Chart>"})]),
        # a vega-lite output (as altair's mimetype renderer leaves it): the report must turn it into SVG
        nbformat.v4.new_code_cell("lw", outputs=[nbformat.v4.new_output(
            "display_data", data={"application/vnd.vegalite.v6+json": lw.to_dict(), "text/plain": "<Chart>"})]),
        nbformat.v4.new_code_cell("table.head()", outputs=[nbformat.v4.new_output(
            "execute_result", data={"text/html": table.head().to_html(), "text/plain": "..."}, execution_count=3)]),
    ]
    return nb


def make_fake_report(root: Path) -> Path:
    """A tiny fake sweep (two sections) → results CSVs, executed notebooks → `smc report`; returns index.html."""
    sections = {"arithmetic": fake_table("arithmetic", ("mawps", "svamp"), "gts"),
                "commonsense": fake_table("commonsense", ("csqa",), "minilm")}
    for name, table in sections.items():
        results.save(table, root / "results" / f"{name}.csv")
        (root / "notebooks").mkdir(parents=True, exist_ok=True)
        nbformat.write(fake_notebook(table, name.title()), root / "notebooks" / f"{name}.ipynb")
    status = pd.DataFrame({"section": ["arithmetic", "commonsense"], "dataset": ["mawps", "csqa"], "records": [43, 10],
                           "grid": [43, 43], "core_hours": [6.0, 3.0], "projected_core_hours": [6.0, 12.9]})
    findings.budgets(status, {"science": {"sections": ["arithmetic", "commonsense"], "core_hours": 20,
                                          "cuts": "none"}}).to_csv(root / "results" / "budget.csv", index=False)
    return report.build("cpu", root / "notebooks", root / "results", root / "report")


@pytest.fixture(scope="module")
def fake_report(tmp_path_factory) -> Path:
    return make_fake_report(tmp_path_factory.mktemp("report"))


def test_pages_exist_and_link(fake_report: Path):
    index = fake_report.read_text()
    for name in ("arithmetic", "commonsense"):
        assert (fake_report.parent / f"{name}.html").exists()
        assert f'href="{name}.html"' in index


def test_no_remote_fetch_anywhere(fake_report: Path):
    for page in fake_report.parent.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"<script[^>]+src=", text), page
        assert "cdnjs" not in text and "cdn.jsdelivr" not in text and "mathjax" not in text.lower(), page


def test_vegalite_outputs_become_inline_svg(fake_report: Path):
    page = (fake_report.parent / "arithmetic.html").read_text()
    charts = page.count("<svg") + page.count('src="data:image/svg+xml')  # nbconvert inlines SVG as data URIs
    assert charts >= 2  # the grid and the (converted) layerwise chart
    assert "vnd.vegalite" not in page


def test_summary_has_a_row_per_method(fake_report: Path):
    tables = pd.read_html(fake_report, attrs={"id": "failing-summary"})
    summary = tables[0].set_index(tables[0].columns[0])
    assert sorted(summary.index) == sorted(METHODS)
    assert summary.loc["omp_after"].str.startswith(">").all()  # i = 0 never drops
    assert (summary.loc["lth"] == "36%").all()  # i = 3: 1.8 points below dense at the second sparsity
    assert (summary.loc["snip"] == "49%").all()  # i = 1: 0.6 then 1.2 points below


def test_failing_sparsity_rule():
    t = fake_table("arithmetic", ("mawps",), "gts")
    f = results.failing_sparsity(t).set_index("method")
    assert np.isnan(f.loc["omp_after", "failing_sparsity"])
    assert f.loc["gmp", "failing_sparsity"] == pytest.approx(0.36)  # 1.2 points below at k = 1
    assert f.loc["snip", "failing_sparsity"] == pytest.approx(0.488)  # 0.6 (k = 1) is within the margin
    assert (f["dense"] == 80.0).all()


def test_report_refuses_remote_scripts(tmp_path: Path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/html": '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>'})])]
    (tmp_path / "nb").mkdir()
    nbformat.write(nb, tmp_path / "nb" / "bad.ipynb")
    with pytest.raises(SMCError, match="network"):
        report.build("cpu", tmp_path / "nb", tmp_path / "res", tmp_path / "out")


def test_no_notebooks_is_an_error(tmp_path: Path):
    with pytest.raises(SMCError, match="no executed notebooks"):
        report.build("cpu", tmp_path, tmp_path, tmp_path / "out")


def test_index_states_each_budget_and_its_verdict(fake_report: Path):
    budget = pd.read_html(fake_report, attrs={"id": "budget"})[0].set_index("budget")
    assert budget.loc["science", "records"] == 53 and budget.loc["science", "projected_core_hours"] == 18.9
    assert budget.loc["science", "verdict"] == "projected within" and "cuts" not in budget.columns
    cuts = re.search(r'<dl id="budget-cuts">(.*?)</dl>', fake_report.read_text(), re.S).group(1)
    assert re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", cuts) == [("science", "none")]


def test_index_names_profile_and_substitutes(fake_report: Path):
    text = fake_report.read_text()
    profile = pd.read_html(fake_report, attrs={"id": "profile"})[0]
    assert profile.iloc[0, 1].startswith("cpu (") and "Sparsity May Cry" in text
    for section, subs in load_profile_substitutes().items():
        for dataset in subs:
            assert f"{section} / {dataset}" in text


def load_profile_substitutes() -> dict:
    from smc_lib.config import load_profile, sections

    prof = load_profile("cpu", check_registries=False)
    return {s: prof[s].get("substitutes") or {} for s in sections(prof)}


def test_layerwise_chart_fits_ten_methods_in_a_page_wide_row():
    """The science grid has ten sparse methods, a column each: at 160 px a panel the row overran the page."""
    lw = pd.concat([fake_layerwise(s).assign(method=lambda t, i=i: t["method"] + str(i))
                    for s in (0.2, 0.488) for i in range(3)])
    lw = lw[lw["method"].isin(sorted(lw["method"].unique())[:10])]
    spec = plots.layerwise_chart(lw).to_dict()
    assert lw["method"].nunique() == 10 and spec["spec"]["width"] * 10 <= plots.PAGE_WIDTH
