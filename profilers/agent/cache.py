"""The agent's local cache of downloaded model files, content-addressed (`<sha256>` in one
folder): a file is checked against its hash before it is kept, so a restarted agent downloads
nothing twice and never times a truncated file."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from common.files import write_atomically

_SHA256 = re.compile(r"[0-9a-f]{64}")
Download = Callable[[Path], None]  # writes the file's bytes to the path it is given


class CorruptDownload(ValueError):
    """What was downloaded does not have the hash the task named."""


def default_cache_dir() -> Path:
    """$HWNAS_AGENT_CACHE, else $HWNAS_HOME/agent-cache, else ~/.cache/hwnas-agent."""
    if os.environ.get("HWNAS_AGENT_CACHE"):
        return Path(os.environ["HWNAS_AGENT_CACHE"]).expanduser()
    if os.environ.get("HWNAS_HOME"):
        return Path(os.environ["HWNAS_HOME"]).expanduser() / "agent-cache"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hwnas-agent"


class FileCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.downloads = 0  # files this process downloaded (cache misses)

    def path(self, sha256: str, suffix: str = "") -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / f"{sha256}{suffix}"

    def fetch(self, sha256: str, suffix: str, download: Download) -> Path:
        """The cached file of this hash, downloaded first if it is not here yet. The suffix
        (`.onnx`, `.tflite`) is kept because runtimes look at it."""
        path = self.path(sha256, suffix)
        if path.is_file():
            return path

        def write(tmp: Path) -> None:
            download(tmp)
            actual = _sha256(tmp)
            if actual != sha256:
                raise CorruptDownload(f"downloaded file has sha256 {actual}, not {sha256}")

        write_atomically(path, write)
        self.downloads += 1
        return path

    def __iter__(self) -> Iterator[Path]:
        return iter(sorted(self.root.glob("*"))) if self.root.is_dir() else iter(())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
