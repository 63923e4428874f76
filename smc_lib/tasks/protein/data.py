"""Protein thermostability data (SMC-Bench section 3.3): readers, labels, the residue check and cropping.

What is held (`data/protein/`, see `../shared/data/README.md`) and what stands in for the paper's data:

- HP-S²C2 / HP-S²C5 (HotProtein, Chen et al. ICLR 2023): fold 0 of the FusionProp CSVs
  (`gene,sequence,tgt_reg,set,validation`). `tgt_reg` is the growth temperature in °C, except that 39.0
  marks the hot class; with that reading the class counts equal the paper's (S²C2 hot 1026 / cold 939;
  S²C5 73 / 387 / 195 / 196 / 189).
- HP-S (5 organism classes): ThermoProt's four FASTA files (psychrophilic, mesophilic, thermophilic,
  hyperthermophilic; 8 000 each) stand in; held-out test = a fixed 10 % by a hash of the record.
- Meltome: the paper's classes are *organism* classes (mesophilic / thermophilic / hyperthermophilic,
  "annotated with their melting temperature"). DeepTM's Tm50 CSVs stand in, labelled by the organism's
  optimal growth temperature (`ogt`, °C) with the bounds in `OGT_BOUNDS`, not by Tm. The 100 FLIP meltome
  records (`TARGET=` Tm, `SET=` split in the headers) are read for the regression view only.

Every sequence is checked against ESM's alphabet: the 20 standard residues plus X, B, J, O, U, Z (ESM has
no token for J, the Leu/Ile ambiguity, so J is encoded as X). A bad residue is an SMCError naming the file,
the record and the position. Sequences longer than a model's limit are cropped (`crop`): a random window in
training, the first `limit` residues in evaluation.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from ...errors import SMCError

STANDARD = "ACDEFGHIKLMNPQRSTVWY"
ALPHABET = frozenset(STANDARD + "XBJOUZ")
TO_ESM = {"J": "X"}                       # residues ESM's alphabet lacks
OGT_BOUNDS = (45.0, 80.0)                 # °C: mesophilic < 45 ≤ thermophilic < 80 ≤ hyperthermophilic
HOT_LABEL = 39.0                          # HotProtein's tgt_reg code for the hot class (see module docstring)
S2C5_CLASSES = {2.5: 0, 8.0: 1, 15.0: 1, 27.5: 2, 72.5: 3, 39.0: 4, 80.0: 4}   # cryo, psychro, meso, thermo, hyper
THERMOPROT = ("psychrophilic", "mesophilic", "thermophilic", "hyperthermophilic")
TEST_PERCENT = 10                         # ThermoProt held-out split (no split is published)

DATASETS = ("hp-s2c2", "hp-s2c5", "hp-s", "meltome")
CLASSES = {"hp-s2c2": ("cold", "hot"),
           "hp-s2c5": ("cryophilic", "psychrophilic", "mesophilic", "thermophilic", "hyperthermophilic"),
           "hp-s": THERMOPROT,
           "meltome": ("mesophilic", "thermophilic", "hyperthermophilic")}
SUBSTITUTES = {
    "hp-s": "ThermoProt (4 organism classes, 8 000 sequences each; test = a fixed 10 % by sha256 of the record) "
            "stands in for HotProtein HP-S",
    "meltome": "DeepTM Tm50 (6 240 train / 1 550 test), classed by the organism's growth temperature "
               f"(< {OGT_BOUNDS[0]:g} / < {OGT_BOUNDS[1]:g} / ≥ {OGT_BOUNDS[1]:g} °C), stands in for the Meltome Atlas",
}


@dataclass(frozen=True)
class Protein:
    uid: str
    sequence: str
    label: int
    value: float | None = None            # the raw number behind the label (°C, Tm), when there is one


def check_sequence(seq: str, path: Path | str, record: str) -> str:
    """The sequence upper-cased, with ESM's substitutions; an unknown residue names file, record, position."""
    seq = seq.strip().upper()
    if not seq:
        raise SMCError(f"{path}: record {record} has an empty sequence")
    for i, ch in enumerate(seq):
        if ch not in ALPHABET:
            raise SMCError(f"{path}: record {record} has {ch!r} at position {i + 1}, not an amino acid "
                           f"({STANDARD} or X, B, J, O, U, Z); fix or drop that record")
    return "".join(TO_ESM.get(ch, ch) for ch in seq)


def crop(seq: str, limit: int, rng: random.Random | None = None) -> str:
    """At most `limit` residues: a random window when `rng` is given (training), else the first `limit`."""
    if len(seq) <= limit:
        return seq
    start = rng.randrange(len(seq) - limit + 1) if rng is not None else 0
    return seq[start:start + limit]


# ------------------------------------------------------------------------------------------- readers
def _rows(path: Path, required: tuple[str, ...], encoding: str = "utf-8") -> list[tuple[int, dict]]:
    if not path.is_file():
        raise SMCError(f"missing data file {path}; run `dvc pull` (or `make data`)")
    with open(path, newline="", encoding=encoding) as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise SMCError(f"{path}: header lacks {missing} (has {reader.fieldnames})")
        return [(i, row) for i, row in enumerate(reader, start=2)]


def _number(path: Path, line: int, column: str, text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise SMCError(f"{path}:{line}: {column} {text!r} is not a number") from None


def hotprotein_label(dataset: str, t: float, path: Path, line: int) -> int:
    """S²C2: hot (1) for tgt_reg ≥ 45 °C or the hot code 39.0, else cold (0); S²C5: `S2C5_CLASSES`."""
    if dataset == "hp-s2c2":
        return int(t >= 45.0 or t == HOT_LABEL)
    if t not in S2C5_CLASSES:
        raise SMCError(f"{path}:{line}: tgt_reg {t} is none of the HP-S2C5 values {sorted(S2C5_CLASSES)}")
    return S2C5_CLASSES[t]


def read_hotprotein(path: Path, dataset: str) -> list[Protein]:
    """A FusionProp HotProtein CSV (`gene,sequence,tgt_reg,set,validation`)."""
    out = []
    for line, row in _rows(path, ("gene", "sequence", "tgt_reg")):
        t = _number(path, line, "tgt_reg", row["tgt_reg"])
        seq = check_sequence(row["sequence"] or "", path, f"{row['gene']} (line {line})")
        out.append(Protein(row["gene"], seq, hotprotein_label(dataset, t, path, line), t))
    return out


def read_fasta(path: Path) -> list[tuple[str, str]]:
    """(header, sequence) pairs; a sequence line before any header, or a header without a sequence, fails."""
    if not path.is_file():
        raise SMCError(f"missing data file {path}; run `dvc pull` (or `make data`)")
    records: list[tuple[str, list[str]]] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                records.append((line[1:].strip(), []))
            elif not records:
                raise SMCError(f"{path}:{n}: sequence before the first '>' header; not FASTA")
            else:
                records[-1][1].append(line)
    for header, parts in records:
        if not parts:
            raise SMCError(f"{path}: record {header!r} has no sequence")
    return [(h, "".join(p)) for h, p in records]


def read_checked_fasta(path: Path) -> list[tuple[str, str]]:
    """A FASTA file whose every sequence passes `check_sequence` (file, record and position named)."""
    return [(h, check_sequence(seq, path, f"{h!r} (#{i + 1})")) for i, (h, seq) in enumerate(read_fasta(path))]


def _test_split(uid: str) -> bool:
    return int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) % 100 < TEST_PERCENT


def read_thermoprot(folder: Path, split: str) -> list[Protein]:
    """ThermoProt: one FASTA per organism class; test = a fixed TEST_PERCENT by sha256 of class/header."""
    out = []
    for label, name in enumerate(THERMOPROT):
        path = folder / f"{name}.fasta"
        for i, (header, seq) in enumerate(read_fasta(path)):
            uid = f"{name}/{i}"
            if _test_split(uid) == (split == "test"):
                out.append(Protein(uid, check_sequence(seq, path, f"{header!r} (#{i + 1})"), label))
    return out


def ogt_class(ogt: float) -> int:
    """Organism class from its optimal growth temperature: 0 mesophilic, 1 thermophilic, 2 hyperthermophilic."""
    return int(ogt >= OGT_BOUNDS[0]) + int(ogt >= OGT_BOUNDS[1])


def read_deeptm(path: Path) -> list[Protein]:
    """DeepTM Tm50 CSV (`uniprot_id,tm,ogt,ph,sequence`; the file starts with a byte-order mark)."""
    out = []
    for line, row in _rows(path, ("uniprot_id", "tm", "ogt", "sequence"), encoding="utf-8-sig"):
        ogt = _number(path, line, "ogt", row["ogt"])
        _number(path, line, "tm", row["tm"])
        seq = check_sequence(row["sequence"] or "", path, f"{row['uniprot_id']} (line {line})")
        out.append(Protein(row["uniprot_id"], seq, ogt_class(ogt), ogt))
    return out


def read_flip_meltome(path: Path) -> list[tuple[Protein, str]]:
    """FLIP meltome FASTA: headers `<id> TARGET=<Tm> SET=<train|test>` → (Protein with value = Tm, set)."""
    out = []
    for header, seq in read_fasta(path):
        fields = dict(part.split("=", 1) for part in header.split()[1:] if "=" in part)
        if "TARGET" not in fields or "SET" not in fields:
            raise SMCError(f"{path}: header {header!r} lacks TARGET= or SET=")
        try:
            tm = float(fields["TARGET"])
        except ValueError:
            raise SMCError(f"{path}: header {header!r}: TARGET {fields['TARGET']!r} is not a number") from None
        out.append((Protein(header.split()[0], check_sequence(seq, path, repr(header)), -1, tm), fields["SET"]))
    return out


@functools.lru_cache(maxsize=16)
def _load(data_dir: str, dataset: str, split: str) -> tuple[Protein, ...]:
    root = Path(data_dir) / "protein"
    if split not in ("train", "test"):
        raise SMCError(f"unknown split {split!r}; protein datasets have train and test")
    if dataset in ("hp-s2c2", "hp-s2c5"):
        return tuple(read_hotprotein(root / "hotprotein_fusionprop" / f"{dataset[3:]}_0_{split}.csv", dataset))
    if dataset == "hp-s":
        return tuple(read_thermoprot(root / "thermoprot", split))
    if dataset == "meltome":
        return tuple(read_deeptm(root / "deeptm_tm50" / f"Tm50{split.title()}.csv"))
    raise SMCError(f"unknown protein dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")


def load_split(data_dir: Path | str, dataset: str, split: str) -> list[Protein]:
    """The proteins of a split (parsed once per process; do not mutate)."""
    return list(_load(str(Path(data_dir).resolve()), dataset, split))


def data_folder(dataset: str) -> str:
    """The folder under `data/protein/` a dataset reads."""
    return {"hp-s2c2": "hotprotein_fusionprop", "hp-s2c5": "hotprotein_fusionprop", "hp-s": "thermoprot",
            "meltome": "deeptm_tm50"}[dataset]
