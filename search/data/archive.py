"""Safe extraction of a zipped image folder into a temporary directory (no zip-slip, no zip bombs)."""

from __future__ import annotations

import re
import stat
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
    try:
        zip_file = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:  # ValueError: a name not UTF-8
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise DatasetError(f"{archive}: not a readable zip archive ({why})") from None
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
