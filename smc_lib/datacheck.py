"""`smc data check`: every dataset under data/ is present, parseable, has its fields and record counts.

The expected counts are those of `../shared/data/README.md` and each folder's SOURCE.txt; a mismatch
means a truncated or replaced file. Files a task reads are parsed by that task's own reader (`FileSpec.parse`),
so a row `smc run` would reject (a `Numbers` cell that is not numbers, an answer key out of range, a residue
that is not an amino acid) is reported here too, from the same code. Every file is checked, whatever fails.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from .errors import SMCError
from .readers import FIX, read_csv, read_fasta, read_jsonl, read_lines, read_text

ARITH = ["Question", "Numbers", "Equation", "Answer"]
AR, CS, PR = "smc_lib.tasks.arithmetic.data:read_csv", "smc_lib.tasks.commonsense", "smc_lib.tasks.protein.data"
CSQA = ["id", "question.stem", "question.choices"]
FLORES_LANGS = ["eng_Latn", "fra_Latn", "ces_Latn", "deu_Latn", "guj_Gujr", "jpn_Jpan", "mya_Mymr",
                "ron_Latn", "rus_Cyrl", "vie_Latn", "zho_Hans"]


@dataclass(frozen=True)
class FileSpec:
    dataset: str         # task/dataset as in data/
    path: str            # relative to data/
    fmt: str             # csv | jsonl | fasta | lines | json
    count: int           # expected records
    fields: tuple = ()
    parse: str = ""      # "module:function[:arg]" — the task reader whose row checks `smc run` applies


def _specs() -> list[FileSpec]:
    s: list[FileSpec] = []
    mawps_dev, asdiv_dev = [384] * 5, [238, 238, 238, 237, 266]
    for k in range(5):
        s += [FileSpec("arithmetic/mawps", f"arithmetic/mawps/cv_mawps/fold{k}/{sp}.csv", "csv", n, tuple(ARITH), AR)
              for sp, n in (("train", 1921 - mawps_dev[k]), ("dev", mawps_dev[k]))]
        s += [FileSpec("arithmetic/asdiv-a", f"arithmetic/asdiv-a/cv_asdiv-a/fold{k}/{sp}.csv", "csv", n,
                       tuple(ARITH), AR) for sp, n in (("train", 1217 - asdiv_dev[k]), ("dev", asdiv_dev[k]))]
    sv = "arithmetic/svamp/mawps-asdiv-a_svamp"
    s += [FileSpec("arithmetic/svamp", f"{sv}/train.csv", "csv", 3138, tuple(ARITH), AR),
          FileSpec("arithmetic/svamp", f"{sv}/dev.csv", "csv", 1000, tuple(ARITH) + ("Type",), AR),
          FileSpec("arithmetic/svamp", "arithmetic/svamp/SVAMP.json", "json", 1000, ("Body", "Question", "Equation", "Answer"))]
    cs = "commonsense/csqa"
    s += [FileSpec(cs, f"{cs}/train_rand_split.jsonl", "jsonl", 9741, tuple(CSQA) + ("answerKey",), f"{CS}:read_csqa"),
          FileSpec(cs, f"{cs}/dev_rand_split.jsonl", "jsonl", 1221, tuple(CSQA) + ("answerKey",), f"{CS}:read_csqa"),
          FileSpec(cs, f"{cs}/test_rand_split_no_answers.jsonl", "jsonl", 1140, tuple(CSQA)),
          FileSpec("commonsense/winogrande", "commonsense/winogrande/dev.jsonl", "jsonl", 1267,
                   ("qID", "sentence", "option1", "option2", "answer"), f"{CS}:read_winogrande")]
    s += [FileSpec("commonsense/race", f"commonsense/race/{sp}/middle.jsonl", "jsonl", 1436,
                   ("article", "question", "options", "answer"), f"{CS}:read_race") for sp in ("validation", "test")]
    hp = "protein/hotprotein_fusionprop"
    for name, n in (("s2c2_0_train", 1768), ("s2c2_0_test", 197), ("s2c5_0_train", 936), ("s2c5_0_test", 104)):
        s.append(FileSpec("protein/hotprotein", f"{hp}/{name}.csv", "csv", n, ("sequence", "tgt_reg"),
                          f"{PR}:read_hotprotein:hp-{name[:4]}"))
    s += [FileSpec("protein/thermoprot", f"protein/thermoprot/{c}.fasta", "fasta", 8000, (), f"{PR}:read_checked_fasta")
          for c in ("psychrophilic", "mesophilic", "thermophilic", "hyperthermophilic")]
    s += [FileSpec("protein/meltome", "protein/flip_meltome_biotrainer/meltome_cv_test.fasta", "fasta", 100, (),
                   f"{PR}:read_flip_meltome"),
          FileSpec("protein/deeptm_tm50", "protein/deeptm_tm50/Tm50Train.csv", "csv", 6240, ("sequence", "tm"),
                   f"{PR}:read_deeptm"),
          FileSpec("protein/deeptm_tm50", "protein/deeptm_tm50/Tm50Test.csv", "csv", 1550, ("sequence", "tm"),
                   f"{PR}:read_deeptm")]
    for split, n in (("dev", 997), ("devtest", 1012)):
        s += [FileSpec("translation/flores200", f"translation/flores200/{split}/{lang}.{split}", "lines", n)
              for lang in FLORES_LANGS]
    for split in ("dev", "test"):
        s += [FileSpec("translation/opus100", f"translation/opus100/en-fr/opus.en-fr-{split}.{l}", "lines", 2000)
              for l in ("en", "fr")]
    return s


SPECS = _specs()


@dataclass
class CheckRow:
    dataset: str
    path: str
    expected: int
    found: int | None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def _count(spec: FileSpec, path: Path) -> int:
    if spec.parse:
        module, func, *arg = spec.parse.split(":")
        return len(getattr(importlib.import_module(module), func)(path, *arg))
    if spec.fmt == "csv":
        return len(read_csv(path, spec.fields))
    if spec.fmt == "jsonl":
        return len(read_jsonl(path, spec.fields))
    if spec.fmt == "fasta":
        return len(read_fasta(path))
    if spec.fmt == "lines":
        return len(read_lines(path))
    try:
        items = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise SMCError(f"{path}:{e.lineno}: malformed JSON ({e.msg}); {FIX}") from None
    for i, it in enumerate(items):
        missing = [f for f in spec.fields if f not in it]
        if missing:
            raise SMCError(f"{path}: item {i} lacks {missing}; {FIX}")
    return len(items)


def check_file(spec: FileSpec, data_dir: Path) -> CheckRow:
    path = Path(data_dir) / spec.path
    try:
        n = _count(spec, path)
    except SMCError as e:
        return CheckRow(spec.dataset, spec.path, spec.count, None, str(e))
    problem = "" if n == spec.count else f"{path}: expected {spec.count} records, found {n}; {FIX}"
    return CheckRow(spec.dataset, spec.path, spec.count, n, problem)


def check_all(data_dir: str | Path = "data") -> list[CheckRow]:
    """Check every known file; a missing data dir is one clear error."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise SMCError(f"no data directory {data_dir}/; run `dvc pull` (or `make data`) first")
    return [check_file(s, data_dir) for s in SPECS]


def format_table(rows: list[CheckRow]) -> str:
    """One line per dataset: files, records found/expected, status."""
    by: dict[str, list[CheckRow]] = {}
    for r in rows:
        by.setdefault(r.dataset, []).append(r)
    lines = [f"{'dataset':26s} {'files':>5s} {'records':>15s}  status"]
    for ds, rs in by.items():
        found = sum(r.found or 0 for r in rs)
        exp = sum(r.expected for r in rs)
        bad = sum(not r.ok for r in rs)
        lines.append(f"{ds:26s} {len(rs):5d} {found:>7d}/{exp:<7d}  {'ok' if not bad else f'{bad} bad'}")
    return "\n".join(lines)
