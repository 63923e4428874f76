"""Math word problems: readers, `numberK` masking, prefix equations and the answer metric.

The data are the splits of Patel et al. (NAACL 2021, "Are NLP models really able to solve simple math
word problems?", github.com/arkilpatel/SVAMP): 5-fold CV of MAWPS and ASDiv-A, and "train on MAWPS +
ASDiv-A, test on SVAMP". Each CSV row holds a `Question` whose quantities are masked as `number0 …`,
their values in `Numbers`, the gold `Equation` in prefix notation over `numberK` and constants, the
`Answer`, and `group_nums` (word positions of each quantity's cell, used by Graph2Tree).

The metric is Patel et al.'s: evaluate the predicted prefix expression over the problem's numbers and
compare with `Answer` (tolerance 1e-4).
"""
from __future__ import annotations

import ast
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ... import readers
from ...errors import SMCError

OPERATORS: tuple[str, ...] = ("+", "-", "*", "/")
NUMBER_RE = re.compile(r"number(\d+)")
DATASETS: tuple[str, ...] = ("mawps", "asdiv-a", "svamp")
N_FOLDS = 5
TOLERANCE = 1e-4
REQUIRED_COLUMNS = ("Question", "Numbers", "Equation", "Answer", "group_nums")


@dataclass(frozen=True)
class Problem:
    """One word problem. `words` is the tokenised question with `numberK` kept in place."""

    words: tuple[str, ...]
    numbers: tuple[float, ...]
    equation: tuple[str, ...]  # prefix tokens: operators, numberK, constants ("0.01", "12.0", …)
    answer: float
    group: tuple[int, ...]  # quantity-cell word positions (Zhang et al. 2020)
    where: str  # "file, row N (line L)" for error messages

    @property
    def num_pos(self) -> list[int]:
        """Word position of each quantity, in `numberK` order (K = 0, 1, …)."""
        pos = {int(m.group(1)): i for i, w in enumerate(self.words) if (m := NUMBER_RE.fullmatch(w))}
        return [pos[k] for k in range(len(self.numbers))]


def split_dir(data_dir: Path | str, dataset: str, fold: int | None) -> Path:
    """The folder holding `train.csv` / `dev.csv` of one dataset (and fold) under `data_dir`."""
    root = Path(data_dir) / "arithmetic"
    if dataset == "svamp":
        return root / "svamp" / "mawps-asdiv-a_svamp"
    if dataset not in DATASETS:
        raise SMCError(f"unknown arithmetic dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    fold = 0 if fold is None else int(fold)
    if not 0 <= fold < N_FOLDS:
        raise SMCError(f"fold must be in 0..{N_FOLDS - 1} for {dataset}, got {fold}")
    return root / dataset / f"cv_{dataset}" / f"fold{fold}"


def load_split(data_dir: Path | str, dataset: str, split: str, fold: int | None = None) -> list[Problem]:
    """Read `train` or `dev` of a dataset (fold for MAWPS / ASDiv-A; SVAMP's dev is the SVAMP test set)."""
    if split not in ("train", "dev"):
        raise SMCError(f"arithmetic split must be 'train' or 'dev', got {split!r}")
    path = split_dir(data_dir, dataset, fold) / f"{split}.csv"
    if not path.is_file():
        raise SMCError(f"missing {path}; run `dvc pull` (or pass data_dir pointing at the data folder)")
    return read_csv(path)


def read_csv(path: Path | str) -> list[Problem]:
    """Parse one CSV of Patel et al.'s format; any malformed row raises SMCError naming file and row.

    The strict shared reader rejects truncated rows (wrong field count) and missing columns."""
    path = Path(path)
    rows = readers.read_csv(path, REQUIRED_COLUMNS[:4])  # group_nums may be empty, so only its column is required
    if rows and "group_nums" not in rows[0]:
        raise SMCError(f"{path}: missing columns ['group_nums']; expected {', '.join(REQUIRED_COLUMNS)}")
    return [_parse_row(row, f"{path}, row {i} (line {row['_line']})") for i, row in enumerate(rows, start=1)]


def _parse_row(row: dict, where: str) -> Problem:
    def bad(what: str) -> SMCError:
        return SMCError(f"{where}: {what}; fix or remove the row")

    try:
        numbers = tuple(float(x) for x in row["Numbers"].split())
    except (ValueError, AttributeError):
        raise bad(f"Numbers {row['Numbers']!r} is not a space-separated list of numbers") from None
    try:
        answer = float(row["Answer"])
    except (ValueError, TypeError):
        raise bad(f"Answer {row['Answer']!r} is not a number") from None
    try:
        group = tuple(int(g) for g in ast.literal_eval(row["group_nums"] or "[]"))
    except (ValueError, SyntaxError, TypeError):
        raise bad(f"group_nums {row['group_nums']!r} is not a list of word positions") from None
    words = tuple((row["Question"] or "").split())
    in_text = sorted(int(m.group(1)) for w in words if (m := NUMBER_RE.fullmatch(w)))
    if in_text != list(range(len(numbers))):
        raise bad(f"the question masks quantities {['number%d' % k for k in in_text]} but Numbers has "
                  f"{len(numbers)} values (expected number0..number{len(numbers) - 1}, each once)")
    equation = tuple((row["Equation"] or "").split())
    try:
        check_prefix(equation, len(numbers))
    except ValueError as e:
        raise bad(f"Equation {row['Equation']!r}: {e}") from None
    return Problem(words, numbers, equation, answer, group, where)


def is_constant(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def check_prefix(tokens: Sequence[str], n_numbers: int) -> None:
    """Raise ValueError unless `tokens` is one complete prefix expression over number0..n-1 and constants."""
    if not tokens:
        raise ValueError("empty equation")
    pending = 1
    for i, tok in enumerate(tokens):
        if pending == 0:
            raise ValueError(f"extra tokens after a complete expression at position {i} ({tok!r})")
        if tok in OPERATORS:
            pending += 1
        elif m := NUMBER_RE.fullmatch(tok):
            if int(m.group(1)) >= n_numbers:
                raise ValueError(f"{tok} is beyond the row's {n_numbers} numbers")
            pending -= 1
        elif is_constant(tok):
            pending -= 1
        else:
            raise ValueError(f"unknown token {tok!r} (expected + - * /, numberK or a constant)")
    if pending:
        raise ValueError(f"incomplete prefix expression ({pending} operand(s) missing)")


def evaluate_prefix(tokens: Sequence[str], numbers: Sequence[float]) -> float | None:
    """Value of a prefix expression over `numbers`; None if it is invalid or divides by zero."""
    stack: list[float] = []
    try:
        for tok in reversed(tokens):
            if tok in OPERATORS:
                a, b = stack.pop(), stack.pop()
                stack.append(a + b if tok == "+" else a - b if tok == "-" else a * b if tok == "*" else a / b)
            elif m := NUMBER_RE.fullmatch(tok):
                stack.append(numbers[int(m.group(1))])
            else:
                stack.append(float(tok))
    except (IndexError, ZeroDivisionError, ValueError, OverflowError):
        return None
    if len(stack) != 1 or not math.isfinite(stack[0]):
        return None
    return stack[0]


def answer_correct(tokens: Sequence[str], numbers: Sequence[float], answer: float,
                   tol: float = TOLERANCE) -> bool:
    """Patel et al.'s metric: the expression's value equals `Answer` within `tol`."""
    value = evaluate_prefix(tokens, numbers)
    return value is not None and abs(value - answer) < tol


@dataclass(frozen=True)
class OutputVocab:
    """Decoder vocabulary in GTS order: operators, then constants, then quantity slots N0..N{k-1}."""

    constants: tuple[str, ...]
    max_numbers: int

    @property
    def tokens(self) -> list[str]:
        return list(OPERATORS) + list(self.constants) + [f"number{k}" for k in range(self.max_numbers)]

    @property
    def n_ops(self) -> int:
        return len(OPERATORS)

    @property
    def n_leaves(self) -> int:
        return len(self.constants) + self.max_numbers

    def encode(self, equation: Sequence[str], where: str = "") -> list[int]:
        index = {t: i for i, t in enumerate(self.tokens)}
        unknown = [t for t in equation if t not in index]
        if unknown:
            raise SMCError(f"{where}: tokens {unknown} are not in the decoder vocabulary; "
                           "build the vocabulary from this split (OutputVocab.build)")
        return [index[t] for t in equation]

    @classmethod
    def build(cls, problems: Sequence[Problem], max_numbers: int | None = None) -> "OutputVocab":
        """Constants are those used by the given (training) equations, in first-seen order of frequency."""
        counts = Counter(t for p in problems for t in p.equation if is_constant(t))
        constants = tuple(sorted(counts, key=lambda t: (-counts[t], float(t))))
        most = max((len(p.numbers) for p in problems), default=1)
        return cls(constants, max(most, max_numbers or 0))
