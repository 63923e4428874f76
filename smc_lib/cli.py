"""`smc`: the command line of SMC-Bench. Every subcommand has --help."""
from __future__ import annotations

import importlib
import math
import os
import sys
from pathlib import Path

import click

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from .errors import SMCError  # noqa: E402


class _Group(click.Group):
    """Turns SMCError into one line on stderr and exit code 1 (usage errors stay click's exit 2)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SMCError as e:
            fresh = "\n" if sys.stderr.isatty() else ""      # a progress bar may hold the terminal's last line
            click.echo(f"{fresh}error: {e}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """SMC-Bench: sparse neural networks on hard tasks (Liu, Chen et al., ICLR 2023)."""


@main.command()
def tasks() -> None:
    """List the registered tasks and their datasets."""
    from .tasks import get_task, task_names

    for name in task_names():
        cls = get_task(name)
        click.echo(f"{name:14s} {', '.join(cls.datasets)}")


@main.command()
def methods() -> None:
    """List the registered sparsification methods."""
    from .methods import get_method, method_names

    for name in method_names():
        cls = get_method(name)
        click.echo(f"{name:14s} {cls.timing:10s} {cls.paper}")


@main.group()
def data() -> None:
    """Dataset utilities."""


@data.command("check")
@click.option("--data-dir", default="data", show_default=True, type=click.Path(file_okay=False))
def data_check(data_dir: str) -> None:
    """Validate every dataset under DATA_DIR: present, parseable, expected fields and record counts."""
    from .datacheck import check_all, format_table

    rows = check_all(data_dir)
    click.echo(format_table(rows))
    bad = [r for r in rows if not r.ok]
    if bad:
        for r in bad:
            click.echo(f"error: {r.problem}", err=True)
        sys.exit(1)


@main.command(add_help_option=False,
              context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name", required=False)
@click.pass_context
def bench(ctx: click.Context, name: str | None) -> None:
    """Run benchmark NAME; its options follow (`smc bench NAME --help`). Prints one JSON line."""
    root = Path(__file__).resolve().parent.parent           # the checkout: benchmarks/ is not in the library
    if not (root / "benchmarks" / "__init__.py").is_file():
        raise SMCError(f"smc bench runs the benchmarks of a source checkout; {root / 'benchmarks'} is missing "
                       "(install with `pip install -e .` from a clone of the repository)")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks import BENCHES

    if name in (None, "-h", "--help"):
        click.echo(ctx.get_help())
        click.echo("\nBenchmarks:\n" + "\n".join(f"  {k:8s} {v}" for k, v in BENCHES.items()))
        return
    if name not in BENCHES:
        raise click.UsageError(f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHES)}")
    importlib.import_module(f"benchmarks.{name}").main(list(ctx.args))


@main.command("run")
@click.option("--task", required=True, help="task name (see `smc tasks`)")
@click.option("--dataset", required=True)
@click.option("--method", required=True, help="method id (see `smc methods`)")
@click.option("--sparsity", type=float, default=0.0, show_default=True, help="fraction of in-scope weights pruned, in [0, 1)")
@click.option("--model", default=None, help="model name of the task's section (default: its first)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fold", type=int, default=None)
@click.option("--profile", default=None, help="params/<profile>.yaml (default: params.yaml's `profile`)")
@click.option("--store", default=None, help="run store folder (default: the profile's)")
@click.option("--data-dir", default=None)
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N")
def run_cmd(**kw) -> None:
    """Run one (task, dataset, model, method, sparsity, seed) — or print its stored result."""
    from .sweep import cli_run

    click.echo(cli_run(**kw))


@main.command("sweep")
@click.argument("section")
@click.option("--profile", default=None, help="params/<profile>.yaml (default: params.yaml's `profile`)")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None, help="default: the profile's")
@click.option("--address", default=None, help="Ray cluster address (default: start a local one)")
@click.option("--method", "methods", multiple=True, help="restrict to these methods (repeatable)")
@click.option("--dataset", "datasets", multiple=True, help="restrict to these datasets (repeatable)")
@click.option("--sparsity", "sparsities", multiple=True, type=float, help="restrict to these sparsities")
@click.option("--out", default=None, help="write the tidy results table to this CSV")
def sweep_cmd(section: str, **kw) -> None:
    """Run SECTION's grid (methods × sparsities × datasets × seeds × folds), or an analysis' own runs
    (obert_roadmap, esm_modules) into its records folder; finished runs are reused."""
    from .sweep import cli_sweep

    table = cli_sweep(section, **kw)
    click.echo(table.to_string(index=False) if len(table) else "no runs")


@main.command("records")
@click.option("--profile", default=None, help="params/<profile>.yaml (default: params.yaml's `profile`)")
@click.option("--missing", is_flag=True, help="list what is left to compute, with the command for each")
def records_cmd(profile, missing) -> None:
    """Per section and dataset: records published out of the grid, dense mean ± σ, summed training hours; then
    each budget of the profile against what its grid costs (measured, or projected while records are missing).
    With --missing: per dataset, method and seed, the sparsities without a record and the IMP rounds still to
    train, each with the `smc sweep` command that computes them."""
    from .config import load_profile
    from .findings import budgets
    from .sweep import pending, status

    prof = load_profile(profile)
    if missing:
        left = pending(prof)
        click.echo(left.to_string(index=False) if len(left) else "nothing missing: every grid has its records")
        return
    table = status(prof)
    click.echo(table.to_string(index=False))
    click.echo(f"total: {int(table['records'].sum())} of {int(table['grid'].sum())} records "
               f"(+ {int(table['rounds'].sum())} IMP rounds), {table['hours'].sum():.2f} h of training "
               f"({table['core_hours'].sum():.2f} core-hours of CPU time; the whole grid at the mean so far: "
               f"{table['projected_core_hours'].sum():.1f})")
    for b in budgets(table, prof.get("budgets") or {}).itertuples():
        projected = ("not projected yet" if math.isnan(b.projected_core_hours)       # a dataset has no record yet
                     else f"projected at {b.projected_core_hours:.1f}")
        click.echo(f"budget {b.budget} ({b.sections}): {b.core_hours:.2f} of {b.budget_core_hours:g} core-hours "
                   f"so far, the grid {projected}: {b.verdict}")


@main.command("verify")
@click.argument("keys", nargs=-1)
@click.option("--profile", default=None, help="params/<profile>.yaml (default: params.yaml's `profile`)")
@click.option("--records", default=None, help="records folder (default: the profile's `records`)")
@click.option("--sample", type=int, default=None, help="check this many records, drawn at random with --seed")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--cheapest", type=int, default=None,
              help="check the N self-contained records (dense, before, during) with the smallest wall time")
@click.option("--republish", is_flag=True,
              help="replace each record that reproduced by its recomputation, naming the committed revision "
                   "that made it (for a record published from uncommitted code)")
def verify_cmd(keys, profile, records, sample, seed, cheapest, republish) -> None:
    """Recompute published run records (all, KEYS, a --sample or the --cheapest) and fail on a mismatch."""
    from .config import load_profile
    from .sweep import profile_store
    from .verify import verify

    prof = load_profile(profile)
    store = profile_store(prof)
    checks = verify(records or store.records, store.artifacts, tuple(keys), sample, seed, cheapest, echo=click.echo,
                    republish=republish)
    bad = [c for c in checks if not c.ok]
    click.echo(f"{len(checks) - len(bad)} of {len(checks)} records reproduced")
    if bad:
        raise SMCError(f"{len(bad)} record(s) did not reproduce: {', '.join(str(c.path) for c in bad)}")


@main.command("report")
@click.option("--profile", default=None)
@click.option("--notebooks", default="outputs/notebooks", show_default=True)
@click.option("--results", default="outputs/results", show_default=True)
@click.option("--out", default="outputs/report", show_default=True)
def report_cmd(profile, notebooks, results, out) -> None:
    """Render outputs/report/index.html (offline HTML) from the executed notebooks and results."""
    from .report import build

    click.echo(build(profile, notebooks, results, out))


if __name__ == "__main__":
    main()
