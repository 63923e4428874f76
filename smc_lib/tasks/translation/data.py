"""Multilingual translation data (SMC-Bench section 3.4): line-aligned parallel text, the language sets, BLEU.

The paper fine-tunes mBART on OPUS-100 English-centric pairs: 2-to-2 (fr, cs), 5-to-5 (+ de, gu, ja) and
10-to-10 (+ my, ro, ru, vi, zh), many-to-many through the English pivot (Arivazhagan et al. 2019): a set
of k languages trains the 2k directions xx → en and en → xx. Evaluation is always all 10 ↔ English
directions (20 BLEU scores and their mean), so 2-to-2 and 10-to-10 are scored on the same test.

What is held: OPUS-100 for en-fr only (`opus100/en-fr/opus.en-fr-{dev,test}.{en,fr}`) and FLORES-200 for all
eleven languages (`flores200/{dev,devtest}/<code>.{dev,devtest}`, 997 / 1 012 sentences, line-aligned
across languages). The CPU profile trains on FLORES-200 dev and tests on devtest; the paper profile names
OPUS-100 (`opus.en-xx-{train,dev,test}.{en,xx}` under `opus100/en-xx/`).

BLEU is sacrebleu's on detokenized text, with the tokenizer its authors recommend per target script:
`13a` for Latin and Cyrillic, `zh` for Chinese, `ja-mecab` for Japanese (mecab-python3 + ipadic, offline),
`char` for Burmese and Gujarati (sacrebleu's flores tokenizers download a model on first use: not used).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ...errors import SMCError

# ISO code → (FLORES-200 code, mBART-cc25 language code)
LANGS = {"en": ("eng_Latn", "en_XX"), "fr": ("fra_Latn", "fr_XX"), "cs": ("ces_Latn", "cs_CZ"),
         "de": ("deu_Latn", "de_DE"), "gu": ("guj_Gujr", "gu_IN"), "ja": ("jpn_Jpan", "ja_XX"),
         "my": ("mya_Mymr", "my_MM"), "ro": ("ron_Latn", "ro_RO"), "ru": ("rus_Cyrl", "ru_RU"),
         "vi": ("vie_Latn", "vi_VN"), "zh": ("zho_Hans", "zh_CN")}
SETS = {"2-to-2": ("fr", "cs"), "5-to-5": ("fr", "cs", "de", "gu", "ja"),
        "10-to-10": ("fr", "cs", "de", "gu", "ja", "my", "ro", "ru", "vi", "zh")}
DATASETS = tuple(SETS)
EVAL_LANGS = SETS["10-to-10"]
BLEU_TOKENIZE = {"zh": "zh", "ja": "ja-mecab", "my": "char", "gu": "char"}    # else 13a
SOURCES = ("flores200", "opus100")


def directions(langs) -> list[tuple[str, str]]:
    """(source, target) pairs through the English pivot: xx → en and en → xx for every xx."""
    return [d for xx in langs for d in ((xx, "en"), ("en", xx))]


def bleu_tokenizer(target: str) -> str:
    return BLEU_TOKENIZE.get(target, "13a")


@dataclass(frozen=True)
class Pair:
    src_lang: str
    tgt_lang: str
    src: str
    tgt: str


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise SMCError(f"missing data file {path}; run `dvc pull` (or `make data`)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SMCError(f"{path}: not UTF-8 at byte {e.start}; re-encode the file") from None
    return text.rstrip("\n").split("\n")


def read_parallel(src_path: Path, tgt_path: Path) -> list[tuple[str, str]]:
    """Line-aligned sentence pairs; different line counts name both files and counts, an empty line names it."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise SMCError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}; parallel files must be "
                       "line-aligned")
    for i, (a, b) in enumerate(zip(src, tgt), start=1):
        for path, line in ((src_path, a), (tgt_path, b)):
            if not line.strip():
                raise SMCError(f"{path}:{i}: empty line in a parallel file; drop that line from both files")
    return list(zip(src, tgt))


def paths(data_dir: Path, source: str, split: str, src: str, tgt: str) -> tuple[Path, Path]:
    """The two files of one direction and split: FLORES-200 (`dev` / `devtest`) or OPUS-100."""
    if source == "flores200":
        folder = {"train": "dev", "test": "devtest"}[split]
        return tuple(data_dir / "translation" / "flores200" / folder / f"{LANGS[l][0]}.{folder}" for l in (src, tgt))
    xx = src if tgt == "en" else tgt
    name = {"train": "train", "dev": "dev", "test": "test"}[split]
    folder = data_dir / "translation" / "opus100" / f"en-{xx}"
    return tuple(folder / f"opus.en-{xx}-{name}.{l}" for l in (src, tgt))


@functools.lru_cache(maxsize=64)
def _load(data_dir: str, source: str, split: str, src: str, tgt: str) -> tuple[Pair, ...]:
    a, b = paths(Path(data_dir), source, split, src, tgt)
    return tuple(Pair(src, tgt, s, t) for s, t in read_parallel(a, b))


def load_direction(data_dir: Path | str, source: str, split: str, src: str, tgt: str) -> list[Pair]:
    if source not in SOURCES:
        raise SMCError(f"unknown translation source {source!r}; choose one of: {', '.join(SOURCES)}")
    for lang in (src, tgt):
        if lang not in LANGS:
            raise SMCError(f"unknown language {lang!r}; choose from {', '.join(LANGS)}")
    return list(_load(str(Path(data_dir).resolve()), source, split, src, tgt))


def monolingual(data_dir: Path | str, source: str, langs) -> list[str]:
    """Every training sentence of `langs` (and English): the text a shared sentencepiece model is fit on."""
    out: list[str] = []
    for xx in langs:
        for pair in load_direction(data_dir, source, "train", xx, "en"):
            out.append(pair.src)
    out += [p.src for p in load_direction(data_dir, source, "train", "en", langs[0])]
    return out
