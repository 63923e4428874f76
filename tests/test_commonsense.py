"""Commonsense section: readers on the real files and on malformed rows, splits, the multiple-choice model."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from smc_lib.errors import SMCError
from smc_lib.tasks import get_task
from smc_lib.tasks.commonsense import (hash_percent, load_split, read_csqa, read_race, read_winogrande,
                                       substitute_blank)

REPO = Path(__file__).resolve().parent.parent
DATA = next((p for p in (REPO / "data", REPO.parent / "shared" / "data")
             if (p / "commonsense" / "csqa" / "dev_rand_split.jsonl").is_file()), None)
needs_data = pytest.mark.skipif(DATA is None, reason="commonsense data not found (dvc pull)")
CS = (DATA or Path("data")) / "commonsense"


@needs_data
@pytest.mark.parametrize("reader, rel, n, n_choices", [
    (read_csqa, "csqa/train_rand_split.jsonl", 9741, 5),
    (read_csqa, "csqa/dev_rand_split.jsonl", 1221, 5),
    (read_winogrande, "winogrande/dev.jsonl", 1267, 2),
    (read_race, "race/validation/middle.jsonl", 1436, 4),
    (read_race, "race/test/middle.jsonl", 1436, 4),
])
def test_reader_row_counts(reader, rel, n, n_choices):
    rows = reader(CS / rel)
    assert len(rows) == n  # counts of ../shared/data/README.md
    assert {len(e.first) for e in rows} == {n_choices}
    assert all(0 <= e.label < n_choices for e in rows)
    assert len({e.label for e in rows}) == n_choices  # every answer position occurs


def _lines(path: Path, k: int = 3) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [next(f) for _ in range(k)]


@needs_data
@pytest.mark.parametrize("reader, rel, breakage", [
    (read_csqa, "csqa/dev_rand_split.jsonl", lambda r: r.update(answerKey="Z")),
    (read_csqa, "csqa/dev_rand_split.jsonl", lambda r: r["question"]["choices"].pop()),
    (read_winogrande, "winogrande/dev.jsonl", lambda r: r.update(sentence=r["sentence"].replace("_", "it"))),
    (read_winogrande, "winogrande/dev.jsonl", lambda r: r.update(answer="3")),
    (read_race, "race/test/middle.jsonl", lambda r: r.update(options=r["options"][:3])),
    (read_race, "race/test/middle.jsonl", lambda r: r.pop("article")),
])
def test_reader_malformed_row_names_file_and_line(tmp_path, reader, rel, breakage):
    lines = _lines(CS / rel)
    bad = json.loads(lines[1])
    breakage(bad)
    path = tmp_path / Path(rel).name
    path.write_text(lines[0] + json.dumps(bad) + "\n" + lines[2], encoding="utf-8")
    with pytest.raises(SMCError, match=f"{path.name}:2: .*(expected|missing)"):
        reader(path)
    path.write_text(lines[0] + "{not json\n", encoding="utf-8")
    with pytest.raises(SMCError, match=f"{path.name}:2:"):
        reader(path)


@pytest.mark.parametrize("sentence, option", [
    ("Sarah was a much better surgeon than Maria so _ always got the easier cases.", "Maria"),
    ("_ is what I said.", "That"), ("It ended with _", "the sofa")])
def test_winogrande_substitution_puts_option_where_blank_was(sentence, option):
    out = substitute_blank(sentence, option)
    i = sentence.index("_")
    assert out[i:i + len(option)] == option
    assert out[:i] == sentence[:i] and out[i + len(option):] == sentence[i + 1:]


@needs_data
def test_winogrande_reader_substitutes_each_option():
    row = json.loads(_lines(CS / "winogrande/dev.jsonl", 1)[0])
    ex = read_winogrande(CS / "winogrande/dev.jsonl")[0]
    i = row["sentence"].index("_")
    for text, opt in zip(ex.first, (row["option1"], row["option2"])):
        assert text == row["sentence"][:i] + opt + row["sentence"][i + 1:]
    assert ex.second is None and ex.label == int(row["answer"]) - 1


@needs_data
def test_substitute_splits_are_fixed_disjoint_and_documented():
    train, note = load_split("winogrande", "train", DATA)
    dev, _ = load_split("winogrande", "dev", DATA)
    assert note and "80/20" in note
    assert len(train) + len(dev) == 1267 and 0.7 < len(train) / 1267 < 0.9
    twins = lambda rows: {e.uid.rsplit("-", 1)[0] for e in rows}  # noqa: E731
    assert not twins(train) & twins(dev)  # a twin pair never straddles the split
    assert [e.uid for e in load_split("winogrande", "train", DATA)[0]] == [e.uid for e in train]
    race_train, race_note = load_split("race", "train", DATA)
    assert race_note and len(race_train) == 1436 and len(load_split("race", "test", DATA)[0]) == 1436
    assert load_split("csqa", "train", DATA)[1] is None
    notes = get_task("commonsense").split_notes(DATA)
    assert notes["csqa"] is None and notes["winogrande"] and notes["race"]


def test_hash_percent_is_stable():
    assert hash_percent("3FCO4VKOZ4BJQ6IFC0VAIBK4KTWE7U") == hash_percent("3FCO4VKOZ4BJQ6IFC0VAIBK4KTWE7U")
    assert len({hash_percent(str(i)) for i in range(1000)}) > 90


def test_unknown_dataset_and_params_are_one_line_errors(tmp_path):
    cls = get_task("commonsense")
    with pytest.raises(SMCError, match="choose one of"):
        cls("cosmosqa", "tiny-random", tmp_path)
    with pytest.raises(SMCError, match="missing data file"):
        cls("csqa", "tiny-random", tmp_path)


@needs_data
def test_race_is_scored_on_its_test_split(tmp_path):
    """The paper compares RACE with fairseq's test numbers: with the full RACE layout (train / validation /
    test) the default evaluation reads test, not validation."""
    from smc_lib.tasks.commonsense import CommonsenseTask

    root = tmp_path / "commonsense" / "race"
    src = DATA / "commonsense" / "race" / "test" / "middle.jsonl"
    lines = src.read_text().splitlines()
    for folder, rows in (("train", lines[:40]), ("validation", lines[40:60]), ("test", lines[60:75])):
        (root / folder).mkdir(parents=True)
        (root / folder / "middle.jsonl").write_text("\n".join(rows) + "\n")
    task = CommonsenseTask("race", "tiny-random", tmp_path)
    split = task.default_train_config().eval_split
    assert split == "test"
    assert [e.uid for e in task.examples(split)] == [e.uid for e in read_race(root / "test" / "middle.jsonl")]
