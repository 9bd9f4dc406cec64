"""Safe extraction of a zipped image folder into a temporary directory (no zip-slip, no zip bombs)."""

from __future__ import annotations

import re
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from search.data.base import DatasetError
from search.data.folder import is_hidden

MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
MAX_MEMBERS = 1_000_000
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


class DatasetTooLarge(DatasetError):
    """An archive whose uncompressed contents exceed the limit."""


# the end of central directory record, and zip64's locator and record (APPNOTE 4.3.14-16)
_END = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")


def declared_members(path: Path) -> int | None:
    """How many members the zip's end record declares, read without parsing the central
    directory (zipfile builds an object per member, gigabytes for a hostile directory of
    millions of tiny entries); None when there is no end record (not a zip)."""
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - _END.size - 0xFFFF))  # the record, then a comment ≤ 64 KiB
        tail = handle.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _END.size > len(tail):
            return None
        members = int(_END.unpack_from(tail, at)[4])
        if members == 0xFFFF and at >= _ZIP64_LOCATOR.size:
            signature, _, offset, _ = _ZIP64_LOCATOR.unpack_from(tail, at - _ZIP64_LOCATOR.size)
            if signature == b"PK\x06\x07":
                handle.seek(offset)
                record = handle.read(_ZIP64_END.size)
                if len(record) == _ZIP64_END.size and record[:4] == b"PK\x06\x06":
                    members = int(_ZIP64_END.unpack(record)[7])
        return members


def check_members(path: Path, where: str, max_members: int = MAX_MEMBERS) -> None:
    """DatasetError naming the file `where` when its zip end record declares more than
    `max_members` members: checked before zipfile reads the directory."""
    try:
        members = declared_members(path)
    except OSError as exc:
        raise DatasetError(f"{where}: cannot read ({exc.strerror})") from None
    if members is not None and members > max_members:
        raise DatasetError(f"{where}: {members} members, more than {max_members}")


def open_zip(path: Path, where: str) -> zipfile.ZipFile:
    check_members(path, where)
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:  # ValueError: a name not UTF-8
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise DatasetError(f"{where}: not a readable zip archive ({why})") from None


def _safe_parts(archive: Path | str, member: zipfile.ZipInfo) -> list[str]:
    """The member's path components; refuses absolute paths, drive letters, '..' and symlinks."""
    name = member.filename
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts:
        raise DatasetError(f"{archive}: refusing unsafe member {name!r} (absolute path or '..')")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise DatasetError(f"{archive}: refusing symbolic link member {name!r}")
    return [part for part in parts if part not in ("", ".")]


@contextmanager
def extracted_zip(
    path: Path,
    *,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
    where: str | None = None,
    parent: Path | None = None,
) -> Iterator[Path]:
    """Extract `path` into a temporary directory (under `parent` if given), yield it, and
    delete it afterwards. Messages name the archive as `where` (default: its path).

    Hidden files and `__MACOSX/` are skipped. The sizes the zip directory declares are checked
    against `max_bytes` before anything is decompressed, and the cap is enforced again on the
    bytes actually written.
    """
    archive = where or str(path)
    zip_file = open_zip(path, archive)
    with zip_file, tempfile.TemporaryDirectory(prefix="hwnas-data-", dir=parent) as temp:
        root = Path(temp)
        members = zip_file.infolist()
        if len(members) > MAX_MEMBERS:
            raise DatasetError(f"{archive}: {len(members)} members, more than {MAX_MEMBERS}")
        checked = [(member, _safe_parts(archive, member)) for member in members]
        declared = sum(member.file_size for member in members)
        if declared > max_bytes:
            raise DatasetTooLarge(
                f"{archive}: uncompressed size {declared} bytes exceeds the {max_bytes}-byte limit"
            )
        written = 0
        for member, parts in checked:
            if member.is_dir() or not parts or any(is_hidden(part) for part in parts):
                continue
            try:
                target = root.joinpath(*parts)
                if not target.resolve().is_relative_to(root.resolve()):
                    raise DatasetError(f"{archive}: refusing unsafe member {member.filename!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zip_file.open(member) as source, target.open("wb") as sink:
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise DatasetTooLarge(
                                f"{archive}: uncompressed data exceeds the {max_bytes}-byte limit"
                            )
                        sink.write(chunk)
            except DatasetError:
                raise
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                OSError,
                ValueError,  # a name the file system refuses (a NUL byte)
                RuntimeError,
                NotImplementedError,
            ) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise DatasetError(
                    f"{archive}: cannot extract {member.filename!r} ({reason})"
                ) from None
        yield root
