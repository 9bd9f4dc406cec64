"""Receive one file from a multipart/form-data request body while it streams in: written to a
temporary file, hashed, and refused (413) as soon as it passes the size limit. The file is
deleted on every failure, a client's disconnect included; start-up sweeps what a crash left."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

log = logging.getLogger("hwnas.api")
FILE_FIELD = "file"
MAX_TEXT_FIELD = 1024
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file itself


class UploadTooLarge(Exception):
    """The request body is larger than the limit."""


class BadUpload(ValueError):
    """Not a multipart body with one `file` part; the message says why."""


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    size: int
    sha256: str
    fields: dict[str, str]


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    text: bytearray = field(default_factory=bytearray)


class _Receiver:
    """Callbacks of the streaming multipart parser: the file part goes to disk, hashed."""

    def __init__(self, tmp_dir: Path, limit: int) -> None:
        self.tmp_dir, self.limit = tmp_dir, limit
        self.part = _Part()
        self.header_field, self.header_value = bytearray(), bytearray()
        self.file: BinaryIO | None = None
        self.path: Path | None = None
        self.filename = ""
        self.size = 0
        self.digest = hashlib.sha256()
        self.fields: dict[str, str] = {}

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self.header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self.header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self.part = _Part()

    def _header_end(self) -> None:
        name = self.header_field.decode("latin-1").strip().lower()
        self.part.headers[name] = self.header_value.decode("latin-1").strip()
        self.header_field.clear()
        self.header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get("content-disposition", ""))
        self.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        self.part.filename = (
            None if raw_filename is None else raw_filename.decode("utf-8", "replace")
        )
        if self.part.name == FILE_FIELD:
            if self.file is not None:
                raise BadUpload(f"more than one {FILE_FIELD!r} part")
            descriptor, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="upload-")
            self.file, self.path = os.fdopen(descriptor, "wb"), Path(name)
            self.filename = Path(self.part.filename or "upload").name[:200]

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self.part.name != FILE_FIELD:
            self.part.text.extend(chunk)
            if len(self.part.text) > MAX_TEXT_FIELD:
                raise BadUpload(
                    f"form field {self.part.name!r} is longer than {MAX_TEXT_FIELD} bytes"
                )
            return
        if self.file is None:
            raise BadUpload(f"the {FILE_FIELD!r} part has no headers")
        self.size += len(chunk)
        if self.size > self.limit:
            raise UploadTooLarge()
        self.digest.update(chunk)
        self.file.write(chunk)

    def _part_end(self) -> None:
        if self.part.name != FILE_FIELD and self.part.name:
            self.fields[self.part.name] = self.part.text.decode("utf-8", "replace")

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def boundary_of(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise BadUpload(
            f"send multipart/form-data with a {FILE_FIELD!r} part (curl -F file=@data.zip)"
        )
    return options[b"boundary"]


async def receive_file(
    chunks: AsyncIterator[bytes], content_type: str | None, tmp_dir: Path, limit: int
) -> ReceivedFile:
    """Stream the body into a temporary file under `tmp_dir`. Raises UploadTooLarge once more
    than `limit` file bytes arrived, BadUpload for a body without exactly one file part."""
    boundary = boundary_of(content_type)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(tmp_dir, limit)
    parser = MultipartParser(boundary, receiver.callbacks())
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > limit + MULTIPART_OVERHEAD:
                raise UploadTooLarge()
            parser.write(chunk)
        parser.finalize()
        if receiver.file is None or receiver.path is None:
            raise BadUpload(f"no {FILE_FIELD!r} part in the form (curl -F file=@data.zip)")
        receiver.file.close()
        digest = receiver.digest.hexdigest()
        return ReceivedFile(
            receiver.path, receiver.filename, receiver.size, digest, receiver.fields
        )
    except FormParserError as exc:
        receiver.discard()
        raise BadUpload(f"malformed multipart body: {exc}") from None
    except BaseException:  # too large, malformed, the client gone, the server stopping
        receiver.discard()
        raise


def sweep_stale_uploads(tmp_dir: Path, older_than_s: float) -> int:
    """Delete what uploads left under `tmp_dir` (a server that crashed mid-upload or
    mid-validation) untouched for `older_than_s`; younger entries may be uploads another API
    process is receiving. Returns how many entries went."""
    if not tmp_dir.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    swept = 0
    for entry in tmp_dir.iterdir():
        try:
            if _newest_mtime(entry) >= cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            swept += 1
        except FileNotFoundError:
            continue  # another process swept it first
        except OSError as exc:
            log.warning("cannot sweep %s: %s", entry, exc.strerror)
    if swept:
        log.warning("swept %d stale upload file(s) from %s", swept, tmp_dir)
    return swept


def _newest_mtime(entry: Path) -> float:
    newest = entry.lstat().st_mtime
    if entry.is_dir() and not entry.is_symlink():
        for root, dirs, files in os.walk(entry):
            for name in [*dirs, *files]:
                newest = max(newest, (Path(root) / name).lstat().st_mtime)
    return newest
