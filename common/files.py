"""Atomic file writes: a reader sees the old file or the new one, never half of one, and a
failed write leaves no temporary file behind."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """`write(temporary)` in `path`'s folder, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_json_atomically(path: Path, data: Any) -> None:
    """`data` as indented JSON (values JSON cannot hold written as strings)."""
    text = json.dumps(data, indent=1, default=str)
    write_atomically(path, lambda tmp: tmp.write_text(text))


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(text))
