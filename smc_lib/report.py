"""The HTML report (`smc report`, the last DVC stage): a page per executed notebook plus an index.

The index says what SMC-Bench is, which profile produced the numbers, which datasets were substitutes,
the paper's findings as measured on the records (`findings.csv`: claim, measurement, verdict), the
revisions the records were computed at and their summed training time, and summarises every method by
its "failing sparsity" per dataset (the lowest sparsity below the dense band, the paper's yardstick in
section 4 with the dense seeds' noise). Pages open offline: nbconvert runs with a
template that drops every CDN script (require.js, MathJax, mermaid, widgets), vega-lite outputs are
rendered to inline SVG by vl-convert, and the finished HTML is checked for any remote fetch.
"""
from __future__ import annotations

import html
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from .config import load_profile, sections
from .errors import SMCError
from .results import COLUMNS, failing_summary, load

TEMPLATES = Path(__file__).resolve().parent / "report_templates"
_VEGALITE = re.compile(r"^application/vnd\.vegalite\.v\d+[+.]json$")
_REMOTE = re.compile(r"""(?:<(?:script|img|iframe|source|video|audio|embed)\b[^>]*\bsrc|<link\b[^>]*\bhref)\s*=\s*["']?\s*(?:https?:)?//"""
                     r"""|url\(\s*["']?(?:https?:)?//|@import\s+["']?(?:https?:)?//""", re.I)
ABOUT = ("SMC-Bench rebuilds the benchmark of <i>Sparsity May Cry</i> (Liu, Chen et al., ICLR 2023): eleven "
         "sparse-training and pruning methods — pruning before, during and after training, lottery tickets "
         "and dynamic sparsity — on tasks much harder than image classification (commonsense and arithmetic "
         "reasoning, protein thermostability, multilingual translation). The paper's finding is that every "
         "method fails on these tasks at sparsities far below those that look harmless on easier benchmarks. "
         "Each section below reruns that comparison with this repository's single mask core and training loop; "
         "dashed lines in the figures are the paper's own numbers.")


def notebook_to_html(notebook: Path, out: Path) -> Path:
    """One executed notebook → a standalone offline HTML page."""
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    _clean_outputs(nb)
    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(TEMPLATES)], embed_images=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": _title(notebook)}})
    _check_offline(body, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


def _clean_outputs(nb: nbformat.NotebookNode) -> None:
    """Replace vega-lite outputs (which need JavaScript to draw) by the SVG vl-convert renders, and drop
    stderr streams (progress bars, warnings): the page shows results; the executed notebook keeps the log."""
    from .plots import spec_to_svg

    for cell in nb.cells:
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if not (o.get("output_type") == "stream"
                                                                   and o.get("name") == "stderr")]
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            spec_key = next((k for k in data if _VEGALITE.match(k)), None)
            if spec_key:
                spec = data[spec_key]
                output["data"] = {"image/svg+xml": spec_to_svg(spec if isinstance(spec, dict) else json.loads(spec))}


def _check_offline(body: str, where: Path) -> None:
    if m := _REMOTE.search(body):
        raise SMCError(f"{where} would fetch from the network ({m.group(0)[:80]!r}); "
                       "render charts with smc_lib.plots (inline SVG), not a CDN renderer")


def _title(path: Path) -> str:
    return path.stem.replace("_", " ").title()


def build(profile: str | None = None, notebooks_dir: str | Path = "outputs/notebooks",
          results_dir: str | Path = "outputs/results", out_dir: str | Path = "outputs/report") -> Path:
    """Write `<out_dir>/index.html` and a page per executed notebook; returns the index path."""
    prof = load_profile(profile, check_registries=False)
    notebooks = sorted(Path(notebooks_dir).glob("*.ipynb"), key=lambda p: _order(p, prof))
    if not notebooks:
        raise SMCError(f"no executed notebooks in {notebooks_dir}; run `dvc repro` (or papermill) first")
    out_dir = Path(out_dir)
    pages = [notebook_to_html(nb, out_dir / f"{nb.stem}.html") for nb in notebooks]
    table = load(sorted(p for p in Path(results_dir).glob("*.csv") if _is_tidy(p)))
    found, floors = Path(results_dir) / "findings.csv", Path(results_dir) / "floors.csv"
    findings = pd.read_csv(found) if found.exists() else None
    floor_table = pd.read_csv(floors) if floors.exists() else None
    budget = Path(results_dir) / "budget.csv"
    budget_table = pd.read_csv(budget, keep_default_na=False) if budget.exists() else None
    index = out_dir / "index.html"
    body = render_index(prof, pages, table, findings, floor_table, budget_table)
    _check_offline(body, index)
    index.write_text(body, encoding="utf-8")
    return index


def _is_tidy(path: Path) -> bool:
    """A section's tidy results CSV (not an analysis table such as findings.csv or esm_modules.csv)."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    return {"method", "sparsity", "metric", "value"} <= set(header)


def _order(path: Path, prof: dict) -> tuple[int, str]:
    names = sections(prof)
    return (names.index(path.stem) if path.stem in names else len(names), path.stem)


def render_index(prof: dict[str, Any], pages: list[Path], table, findings=None, floors=None, budget=None) -> str:
    """The index page: about, findings, profile, substitutes, failing-sparsity summary, provenance, links."""
    links = "".join(f'<li><a href="{html.escape(p.name)}">{html.escape(_title(p))}</a></li>' for p in pages)
    summary = failing_summary(table)
    summary_html = (summary.to_html(classes="summary", border=0, table_id="failing-summary", escape=True)
                    if len(summary) else "<p>No results tables found in outputs/results.</p>")
    findings_html = _table_html(findings, "findings", "No findings table (outputs/results/findings.csv): run the "
                                "findings notebook.")
    floors_html = _table_html(floors, "floors", "No floors set in this profile.")
    budget_html = _budget_html(budget)
    return _PAGE.format(
        about=ABOUT, profile=_profile_html(prof), substitutes=_substitutes_html(prof), summary=summary_html,
        links=links, n_runs=_n_runs(table), findings=findings_html, provenance=_provenance_html(table),
        floors=floors_html, budget=budget_html,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def _table_html(table, table_id: str, empty: str) -> str:
    """One of the index's tables (findings, floors, budget) as HTML, or a line saying why it is missing."""
    if table is None or not len(table):
        return f"<p>{html.escape(empty)}</p>"
    return table.to_html(classes=table_id, border=0, table_id=table_id, index=False, escape=True)


def _budget_html(budget) -> str:
    """The budget table, and below it what each budget cut to fit (a paragraph each: a reason is prose, too
    long for a table cell)."""
    if budget is None or not len(budget) or "cuts" not in budget:
        return _table_html(budget, "budget", "No budgets set in this profile.")
    cuts = "".join(f"<dt>{html.escape(str(r.budget))}</dt><dd>{html.escape(str(r.cuts))}</dd>"
                   for r in budget.itertuples() if isinstance(r.cuts, str) and r.cuts.strip())
    return (_table_html(budget.drop(columns="cuts"), "budget", "")
            + (f'<p class="note">Cuts, per budget:</p><dl id="budget-cuts">{cuts}</dl>' if cuts else ""))


def _provenance_html(table) -> str:
    """Which revisions computed the records shown, and their summed training time (core-hours at 1 thread)."""
    if not len(table):
        return "<p>No records.</p>"
    runs = table.drop_duplicates([c for c in COLUMNS[:7]])
    revs = runs["git_revision"].astype(object).where(runs["git_revision"].notna(), "unknown").value_counts()
    items = "".join(f"<li><code>{html.escape(str(r))}</code>: {n} record{'s' if n != 1 else ''}</li>"
                    for r, n in revs.items())
    hours = runs["wall_s"].sum() / 3600
    return f"<ul id=\"revisions\">{items}</ul><p>Summed training time of these records: {hours:.1f} h.</p>"


def _n_runs(table) -> int:
    return int(table.drop_duplicates([c for c in COLUMNS[:7]]).shape[0]) if len(table) else 0


def _profile_html(prof: dict) -> str:
    rows = [("profile", f"{prof['profile']} ({prof['path']})"), ("device", prof.get("device", "auto")),
            ("executor", prof.get("executor", "local"))]
    for name in sections(prof):
        sec = prof[name]
        sp = sec.get("sparsities", prof.get("sparsities", []))
        rows.append((name, f"datasets {', '.join(sec.get('datasets', []))}; models {', '.join(sec.get('models', []))}; "
                           f"{len(sec.get('methods', []))} methods; sparsities {', '.join(f'{s:.1%}' for s in sp)}; "
                           f"seeds {sec.get('seeds', prof.get('seeds', [0]))}; dense seeds "
                           f"{sec.get('dense_seeds', prof.get('dense_seeds', sec.get('seeds', prof.get('seeds', [0]))))}; "
                           f"folds {sec.get('folds', [None])}"))
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)


def _substitutes_html(prof: dict) -> str:
    items = [f"<li><b>{html.escape(name)} / {html.escape(ds)}</b>: {html.escape(str(text))}</li>"
             for name in sections(prof) for ds, text in (prof[name].get("substitutes") or {}).items()]
    return f"<ul>{''.join(items)}</ul>" if items else "<p>None: every dataset is the paper's original.</p>"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SMC-Bench report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
table.summary td {{ text-align: center; }}
caption, .note {{ color: #666; font-size: 90%; }}
dt {{ font-weight: bold; }} dd {{ margin: 0 0 0.6em 1.5em; }}
</style></head>
<body>
<h1>SMC-Bench report</h1>
<p>{about}</p>
<h2>Sections</h2>
<ul id="sections">{links}</ul>
<h2>The paper's findings, measured</h2>
<p class="note">Each claim is a rule in <code>smc_lib/findings.py</code> over the run records: <i>reproduced</i>,
<i>not reproduced</i>, or <i>inconclusive</i> (within the noise band, or records missing: while a grid is being
computed, a claim gets a verdict only when no record still to come could change it). The noise band of a
curve is its dense seeds': a point fails when it is more than max(1 point, 2&nbsp;σ of the dense seeds) below
the dense mean. Where ours disagree with the paper, the verdict says so.</p>
{findings}
<h2>Dense floors</h2>
<p class="note">The dense score each dataset must reach for its sparse curves to mean something (the profile's
<code>floors</code>): mean ± σ over the dense seeds.</p>
{floors}
<h2>Budget</h2>
<p class="note">What each grid costs in core-hours of training (the CPU time of the runs' processes, IMP rounds
included), measured from the records, projected at the mean so far while records are missing, against the
profile's <code>budgets</code>, and what the profile cut to fit (<code>smc records</code> prints it per dataset).</p>
{budget}
<h2>Failing sparsity</h2>
<p class="note">Per method and dataset: the lowest sparsity whose metric (mean over seeds and folds) falls below
the dense band (more than max(1 point, 2&nbsp;σ of the dense seeds) under the dense mean); "&gt; x" = never at the
sparsities run (up to x). {n_runs} runs.</p>
{summary}
<h2>Provenance</h2>
<p class="note">The revisions of the code that computed the records (a record names its revision; `smc verify`
recomputes them).</p>
{provenance}
<h2>Profile</h2>
<table id="profile">{profile}</table>
<h2>Substitute datasets</h2>
{substitutes}
<p class="note">Generated {generated}.</p>
</body></html>
"""


def main(argv: list[str] | None = None) -> None:
    """`python -m smc_lib.report [--profile P]` (the same as `smc report`)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--notebooks", default="outputs/notebooks")
    ap.add_argument("--results", default="outputs/results")
    ap.add_argument("--out", default="outputs/report")
    a = ap.parse_args(argv)
    try:
        print(build(a.profile, a.notebooks, a.results, a.out))
    except SMCError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
