"""The agent's local cache of downloaded files: content-addressed, checked before it is kept."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from profilers.agent.cache import CorruptDownload, FileCache


def test_the_file_cache_keeps_checked_files_only(tmp_path: Path) -> None:
    content = b"model bytes"
    sha256 = hashlib.sha256(content).hexdigest()
    cache, calls = FileCache(tmp_path), []

    def download(target: Path) -> None:
        calls.append(target)
        target.write_bytes(content)

    path = cache.fetch(sha256, ".onnx", download)
    assert path.read_bytes() == content and path.name == f"{sha256}.onnx"
    assert cache.fetch(sha256, ".onnx", download) == path and len(calls) == 1
    assert FileCache(tmp_path).fetch(sha256, ".onnx", download) == path  # a restarted agent
    assert len(calls) == 1 and cache.downloads == 1

    with pytest.raises(CorruptDownload, match="not " + "0" * 64):
        cache.fetch("0" * 64, ".onnx", download)
    assert [p.name for p in FileCache(tmp_path)] == [path.name]  # nothing half-kept
    with pytest.raises(ValueError, match="not a sha256"):
        cache.path("../etc")
