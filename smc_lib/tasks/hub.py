"""What a run loaded, for its record: a hub model's commit, or a local folder's weight files by sha256.

The paper profile names models by hub id; without a pin, the same id can serve other weights tomorrow. Every
record states what it loaded (`Task.record_info`), and the tasks that load from a hub take a `revision` param
(a commit, tag or branch) that `from_pretrained` pins."""
from __future__ import annotations

import hashlib
from pathlib import Path

WEIGHTS = ("model.safetensors", "pytorch_model.bin", "tf_model.h5")


def provenance(name_or_path: str, model=None, revision: str | None = None) -> dict:
    """{"path", "sha256"} for a local folder or file; {"hub", "revision"} for a hub id (the commit the loaded
    config came from when transformers knows it, else the pinned `revision`)."""
    path = Path(name_or_path)
    if path.exists():
        files = [path] if path.is_file() else [path / w for w in WEIGHTS if (path / w).is_file()]
        shown = "/".join(path.parts[-2:]) if path.is_absolute() else str(path)   # no machine paths in records
        return {"path": shown, "sha256": {f.name: _sha256(f) for f in files}}
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return {"hub": name_or_path, "revision": commit or revision}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
