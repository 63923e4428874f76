"""`smc verify`: recompute published run records and fail when one no longer matches its code.

A record is served from the cache by its key, and the key covers the config, the resolved defaults, the
data's fingerprint and the task's and method's `version` (see runs.resolve). What a key cannot see is a
change of behaviour in code whose `version` was not bumped, or a record edited by hand: recomputing the
record catches both. Training is deterministic for a given seed and thread count on one machine, so the
tolerance is one evaluation example's worth (`RunResult.tolerance`); the recomputation runs with the
record's thread count. Dependencies (the dense run, an IMP chain's earlier round) come from the artifact
store, recomputed when missing.

`--republish` also replaces each record that reproduced with its recomputation, which names the committed
revision that made it: the repair for a record published from uncommitted code (a `+dirty` revision).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import SMCError
from .runs import RunConfig, RunResult, Store, atomic_write, check_same, git_revision, read_record, recompute
from .runtime import torch_threads

SELF_CONTAINED = ("dense", "before", "during")   # timings whose runs need no other run's weights


@dataclass
class Check:
    path: Path
    record: RunResult
    recomputed: float | None = None
    problem: str | None = None
    seconds: float = 0.0
    republished: str | None = None      # the revision the replacing record names (`republish`)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        r = self.record
        m = r.primary_metric
        head = f"{'ok  ' if self.ok else 'FAIL'} {self.path}  {RunConfig(**r.config).label()}"
        if self.problem:
            return f"{head}\n     {self.problem}"
        again = f", republished at {self.republished[:12]}" if self.republished else ""
        return f"{head}  {m} {r.metrics[m]:.4f} == {self.recomputed:.4f} ({self.seconds:.0f} s{again})"


def published(records: Path | str) -> list[tuple[Path, RunResult]]:
    """Every record under `records`, sorted by path: the sections' (`<task>/<key>.json`) and those of the
    analyses with a records folder of their own (`<analysis>/<task>/<key>.json`: the oBERT roadmap, Table 1)."""
    root = Path(records)
    if not root.is_dir():
        raise SMCError(f"no records folder {root}/; pass --records or run `smc sweep` first")
    return [(p, read_record(p)) for p in sorted([*root.glob("*/*.json"), *root.glob("*/*/*.json")])]


def select(found: list[tuple[Path, RunResult]], keys: tuple[str, ...] = (), sample: int | None = None,
           seed: int = 0, cheapest: int | None = None) -> list[tuple[Path, RunResult]]:
    """The records to check: those named by key (or key prefix), else a seeded random sample, else the
    `cheapest` self-contained ones by recorded wall time, else all."""
    from .methods import get_method

    if keys:
        chosen = [(p, r) for p, r in found if any(r.key.startswith(k) for k in keys)]
        missing = [k for k in keys if not any(r.key.startswith(k) for _, r in found)]
        if missing:
            raise SMCError(f"no published record has key {missing[0]!r}; list them with `ls {found[0][0].parent.parent}/*/`"
                           if found else f"no records to match key {missing[0]!r}")
        return chosen
    if cheapest is not None:
        own = [(p, r) for p, r in found if get_method(r.config["method"]).timing in SELF_CONTAINED]
        return sorted(own, key=lambda pr: pr[1].wall_s)[:cheapest]
    if sample is not None and sample < len(found):
        return sorted(random.Random(seed).sample(found, sample), key=lambda pr: str(pr[0]))
    return found


def check(path: Path, record: RunResult, store: Store, republish: bool = False) -> Check:
    """Recompute one record (its key must still be the one its config gives) and compare; with `republish`,
    a record that reproduced is replaced by its recomputation (written atomically)."""
    cfg = RunConfig(**record.config)
    try:
        if cfg.key() != record.key:
            return Check(path, record, problem=f"its config now hashes to {cfg.key()}, not {record.key}: the code's "
                                               "version or defaults changed, so this record is orphaned; rerun "
                                               "`smc sweep` and delete it")
        start = time.perf_counter()
        with torch_threads(record.threads):
            again = recompute(cfg, store)
        seconds = time.perf_counter() - start
        recomputed = again.metrics.get(record.primary_metric)
        check_same(record, again, path)
    except SMCError as e:
        return Check(path, record, problem=str(e))
    if republish:
        atomic_write(path, again.to_json())
    return Check(path, record, recomputed, seconds=seconds, republished=again.git_revision if republish else None)


def verify(records: Path | str, artifacts: Path | str, keys: tuple[str, ...] = (), sample: int | None = None,
           seed: int = 0, cheapest: int | None = None, echo=print, republish: bool = False) -> list[Check]:
    """Check the selected records, printing a line for each; returns the checks. Each record is recomputed
    against its own records folder (`<task>/` 's parent), where the runs it starts from are published.
    `republish`: replace each record that reproduced by its recomputation; refused, before any training,
    unless the code is committed (a republished record must name the revision that made it)."""
    revision = git_revision() if republish else None
    if republish and (revision is None or revision.endswith("+dirty")):
        raise SMCError(f"smc verify --republish: the code is not committed (revision {revision}); commit it "
                       "(`git status` lists the changes) so the republished records name the code that made them")
    chosen = select(published(records), keys, sample, seed, cheapest)
    if not chosen:
        raise SMCError(f"no records to verify under {records}/")
    out = []
    for path, record in chosen:
        out.append(check(path, record, Store(records=path.parent.parent, artifacts=Path(artifacts)), republish))
        echo(out[-1].line())
    return out
