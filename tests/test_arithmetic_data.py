"""Arithmetic data: readers, prefix equations, the answer metric, and a sanity pass over the real data."""
from __future__ import annotations

import csv
import glob
from pathlib import Path

import pytest

from smc_lib.errors import SMCError
from smc_lib.tasks.arithmetic.data import (OutputVocab, answer_correct, check_prefix, evaluate_prefix, load_split,
                                           read_csv, split_dir)

REPO = Path(__file__).resolve().parent.parent
DATA_DIRS = [REPO / "data", REPO.parent / "shared" / "data"]
HEADER = ["Question", "Numbers", "Equation", "Answer", "group_nums", "Body", "Ques_Statement"]


def real_data_dir() -> Path | None:
    return next((d for d in DATA_DIRS if (d / "arithmetic").is_dir()), None)


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def row(question: str, numbers: str, equation: str, answer: str, group: str = "[0, 1]") -> list[str]:
    return [question, numbers, equation, answer, group, question, ""]


def test_evaluate_prefix_and_metric():
    assert evaluate_prefix(["-", "*", "number0", "number1", "2.0"], [3.0, 4.0]) == 10.0
    assert evaluate_prefix(["/", "number0", "-", "number1", "number1"], [1.0, 2.0]) is None  # 1 / 0
    assert evaluate_prefix(["+", "number0"], [1.0]) is None
    assert answer_correct(["/", "number0", "number1"], [1.0, 3.0], 0.33333)
    assert not answer_correct(["/", "number0", "number1"], [1.0, 3.0], 0.333)


@pytest.mark.parametrize("tokens, problem", [
    ([], "empty"), (["+", "number0"], "incomplete"), (["number0", "number1"], "extra tokens"),
    (["^", "number0", "number1"], "unknown token"), (["+", "number0", "number2"], "beyond")])
def test_check_prefix_rejects(tokens, problem):
    with pytest.raises(ValueError, match=problem):
        check_prefix(tokens, 2)


def test_reader_parses(tmp_path):
    path = write_csv(tmp_path / "ok.csv", [row("tom has number0 and number1 more .", "3 4.5", "+ number0 number1",
                                               "7.5", "[1, 2, 4]")])
    (p,) = read_csv(path)
    assert p.numbers == (3.0, 4.5) and p.equation == ("+", "number0", "number1") and p.num_pos == [2, 4]
    assert p.group == (1, 2, 4) and str(path) in p.where and "row 1" in p.where


@pytest.mark.parametrize("bad, message", [
    (row("a number0 b number1", "1 2", "+ number0 number2", "3"), "number2 is beyond the row's 2 numbers"),
    (row("a number0 b number1", "1 2", "+ number0", "3"), "incomplete"),
    (row("a number0 b number1", "1 2", "+ number0 ) number1", "3"), "unknown token"),
    (row("a number0 b number3", "1 2", "+ number0 number1", "3"), "masks quantities"),
    (row("a number0 b number1", "1 x", "+ number0 number1", "3"), "Numbers"),
    (row("a number0 b number1", "1 2", "+ number0 number1", "three"), "Answer"),
])
def test_reader_errors_name_file_and_row(tmp_path, bad, message):
    good = row("x number0 y", "1", "number0", "1", "[]")
    path = write_csv(tmp_path / "bad.csv", [good, good, bad])
    with pytest.raises(SMCError) as e:
        read_csv(path)
    assert str(path) in str(e.value) and "row 3" in str(e.value) and message in str(e.value)


def test_missing_files_and_names(tmp_path):
    with pytest.raises(SMCError, match="dvc pull"):
        load_split(tmp_path, "mawps", "train", 0)
    with pytest.raises(SMCError, match="unknown arithmetic dataset"):
        split_dir(tmp_path, "gsm8k", 0)
    with pytest.raises(SMCError, match="fold"):
        split_dir(tmp_path, "mawps", 7)
    assert split_dir(tmp_path, "svamp", 3).name == "mawps-asdiv-a_svamp"


def test_output_vocab_order_and_encode(tmp_path):
    rows = [row("a number0 b number1", "1 2", "* + number0 number1 100.0", "300"),
            row("a number0", "5", "/ number0 100.0", "0.05"), row("a number0", "5", "* number0 0.5", "2.5")]
    vocab = OutputVocab.build(read_csv(write_csv(tmp_path / "t.csv", rows)))
    assert vocab.tokens == ["+", "-", "*", "/", "100.0", "0.5", "number0", "number1"]
    assert vocab.encode(["*", "100.0", "number1"]) == [2, 4, 7]
    with pytest.raises(SMCError, match="not in the decoder vocabulary"):
        vocab.encode(["*", "12.0", "number1"], "f.csv, row 9")


# Problems whose `Answer` disagrees with the value of their own gold `Equation` (beyond 1e-4), as
# (Numbers, Equation). Rounded answers (first 9) and upstream label errors in MAWPS (last 6). Each occurs
# in one fold of MAWPS / ASDiv-A and again in the SVAMP training file. Patel et al.'s code scores against
# the equation's value, so these do not affect the metric.
KNOWN_ANSWER_MISMATCHES = {
    ((3.0, 10.0), "/ number1 number0"), ((2.99, 12.0), "/ number0 number1"),
    ((76.7, 129.9), "* / - number1 number0 number0 100.0"), ((6.0, 500.0), "/ number1 number0"),
    ((78.0, 46.0), "* / - number0 number1 number0 100.0"), ((2.0, 0.3333), "/ number1 number0"),
    ((16.0, 0.4698, 0.374, 17.0), "+ number1 * number2 - number3 1.0"), ((50.0, 60.0), "/ + number0 number1 2.0"),
    ((0.6667, 8.0, 0.75), "* / number1 number0 number2"),
    ((40.0, 7.0), "/ number0 number1"), ((10.62, 2.0, 1.59, 13.95), "+ * number0 number1 number2"),
    ((1.3,), "/ number0 5.0"), ((700.0, 100.0), "/ number0 7.0"), ((34.0, 4.0), "* number0 number1"),
    ((1222.0, 513.0), "- number0 number1"),
}


def test_gold_equations_reproduce_answers_on_all_data():
    """Every row of MAWPS, ASDiv-A and SVAMP parses, and the evaluator turns each gold Equation into its
    Answer (tolerance 1e-4), except exactly the known, listed rows."""
    data = real_data_dir()
    if data is None:
        pytest.skip(f"arithmetic data not found in {[str(d) for d in DATA_DIRS]}; run `dvc pull`")
    files = sorted(glob.glob(str(data / "arithmetic" / "**" / "*.csv"), recursive=True))
    assert len(files) == 22, files
    rows, mismatches = 0, set()
    for f in files:
        for p in read_csv(f):
            rows += 1
            if not answer_correct(p.equation, p.numbers, p.answer):
                mismatches.add((p.numbers, " ".join(p.equation)))
    assert rows == 5 * 1921 + 5 * 1217 + 3138 + 1000
    assert mismatches == KNOWN_ANSWER_MISMATCHES


def test_truncated_row_is_rejected_with_its_line(tmp_path):
    good = row("x number0 y", "1", "number0", "1", "[]")
    path = write_csv(tmp_path / "cut.csv", [good, good])
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 12], encoding="utf-8")  # cut the last row short
    with pytest.raises(SMCError, match=r"cut.csv:3: expected \d+ fields"):
        read_csv(path)
