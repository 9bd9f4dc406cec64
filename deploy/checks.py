"""export/checks.json: per format, the file's sha256 with the verification and the measurement
taken of exactly that file. A file replaced on disk no longer matches its entry, so its figures
are recomputed instead of shown stale."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

CHECKS_FILE = "checks.json"
TARGETS_FILE = "targets.json"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json_or_empty(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def fresh_entry(entry: dict[str, Any] | None, path: Path) -> bool:
    """Whether `entry` describes the file now at `path` (same sha256) and holds both figures."""
    if not entry or not path.is_file():
        return False
    complete = bool(entry.get("verification")) and bool(entry.get("measurement"))
    return complete and entry.get("sha256") == file_digest(path)
