"""Strict readers for the raw dataset formats (CSV, JSONL, FASTA, line-aligned text).

Every reader fails loudly on the first malformed record with `file:line: what was expected`, so a
truncated download or a hand-edited file is caught before any training starts.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Iterable

from .errors import SMCError

FIX = "restore it with `dvc pull` (or `make data`)"


def _open(path: Path) -> io.StringIO:
    """The file's text, checked: a NUL byte or invalid UTF-8 names the file, line and byte offset (a NUL in
    a CSV field would otherwise be read as data and change the results silently)."""
    path = Path(path)
    if not path.is_file():
        raise SMCError(f"missing data file {path}; {FIX}")
    data = path.read_bytes()
    if (nul := data.find(b"\x00")) >= 0:
        raise SMCError(f"{path}:{_line_of(data, nul)}: NUL byte at byte offset {nul}; {FIX}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SMCError(f"{path}:{_line_of(data, e.start)}: invalid UTF-8 at byte offset {e.start}; {FIX}") from None
    return io.StringIO(text, newline="")


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_csv(path: Path, required: Iterable[str] = ()) -> list[dict[str, str]]:
    """Rows of a CSV file with a header; every row must have exactly the header's fields."""
    required = list(required)
    with _open(path) as f:
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise SMCError(f"{path}: empty file, expected a CSV header; {FIX}") from None
        except csv.Error as e:
            raise SMCError(f"{path}:1: malformed CSV header ({e}); {FIX}") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise SMCError(f"{path}:1: header lacks column(s) {missing}; found {header}; {FIX}")
        rows, start = [], reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise SMCError(f"{path}:{start + 1}: malformed CSV row ({e}); {FIX}") from None
            if len(row) != len(header):
                raise SMCError(f"{path}:{start + 1}: expected {len(header)} fields "
                               f"({','.join(header)}), got {len(row)} — truncated or malformed row; {FIX}")
            rec = dict(zip(header, row))
            empty = [c for c in required if rec[c] == ""]
            if empty:
                raise SMCError(f"{path}:{start + 1}: empty value for {empty}; {FIX}")
            rec["_line"] = start + 1
            rows.append(rec)
            start = reader.line_num
    return rows


def read_jsonl(path: Path, required: Iterable[str] = ()) -> list[dict]:
    """One JSON object per line; `required` keys may be dotted (`question.stem`)."""
    required = list(required)
    out = []
    with _open(path) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise SMCError(f"{path}:{i}: not a JSON object ({e.msg}) — truncated or malformed line; {FIX}") from None
            if not isinstance(rec, dict):
                raise SMCError(f"{path}:{i}: expected a JSON object, got {type(rec).__name__}; {FIX}")
            for key in required:
                node = rec
                for part in key.split("."):
                    if not isinstance(node, dict) or part not in node:
                        raise SMCError(f"{path}:{i}: missing field {key!r}; {FIX}")
                    node = node[part]
            rec["_line"] = i
            out.append(rec)
    return out


def read_fasta(path: Path, alphabet: str = "ACDEFGHIKLMNPQRSTVWYXBZUOJ*-") -> list[tuple[str, str]]:
    """(header, sequence) pairs; sequences may span lines and must use the amino-acid alphabet."""
    allowed = set(alphabet) | set(alphabet.lower())
    records: list[tuple[str, str]] = []
    header, seq, header_line = None, [], 0
    with _open(path) as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                if header is not None:
                    if not seq:
                        raise SMCError(f"{path}:{header_line}: record {header!r} has no sequence; {FIX}")
                    records.append((header, "".join(seq)))
                header, seq, header_line = line[1:], [], i
            else:
                if header is None:
                    raise SMCError(f"{path}:{i}: sequence before the first '>' header; {FIX}")
                bad = set(line) - allowed
                if bad:
                    raise SMCError(f"{path}:{i}: characters {sorted(bad)} are not amino acids; {FIX}")
                seq.append(line)
    if header is not None:
        if not seq:
            raise SMCError(f"{path}:{header_line}: record {header!r} has no sequence; {FIX}")
        records.append((header, "".join(seq)))
    return records


def read_text(path: Path) -> str:
    """A whole text file, checked like every reader's input (present, UTF-8, no NUL byte)."""
    with _open(path) as f:
        return f.read()


def read_lines(path: Path) -> list[str]:
    """Lines of a plain-text file (one sentence per line), without the newline."""
    with _open(path) as f:
        return f.read().splitlines()
