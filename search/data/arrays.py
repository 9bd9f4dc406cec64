"""`.npz` datasets: `x` images (N,H,W), (N,H,W,C) or (N,C,H,W); `y` integer labels; optional
`class_names`. The zip directory and each array's .npy header are read first, so every size and
shape is known, and capped, before a byte is decompressed."""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.data.archive import MAX_UNCOMPRESSED_BYTES, DatasetTooLarge, check_members
from search.data.base import DatasetError, RawImages, digest_arrays

CHANNEL_COUNTS = frozenset({1, 3, 4})
MAX_CLASSES = 100_000
ARRAYS = ("x", "y", "class_names")
MAX_MEMBERS = 1000  # arrays in one .npz; a dataset uses three
_CHUNK = 1 << 20
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError)
_NPY_MAGIC = b"\x93NUMPY"


def _reason(exc: BaseException) -> str:
    """An exception in one line, without the file path an OSError carries."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)[:200] or type(exc).__name__


@dataclass(frozen=True)
class NpyMember:
    """One array of an .npz as its header declares it."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int  # bytes of the .npy header before the data

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def data_bytes(self) -> int:
        return self.count * self.dtype.itemsize


@contextmanager
def open_npz(path: Path, where: str) -> Iterator[zipfile.ZipFile]:
    try:
        with path.open("rb") as probe:
            single = probe.read(len(_NPY_MAGIC)) == _NPY_MAGIC
    except OSError as exc:
        raise DatasetError(f"{where}: cannot read .npz ({_reason(exc)})") from None
    if single:
        raise DatasetError(f"{where}: holds a single array; expected an .npz with 'x' and 'y'")
    check_members(path, where, MAX_MEMBERS)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise DatasetError(f"{where}: cannot read .npz ({_reason(exc)})") from None
    with archive:
        yield archive


def npz_arrays(archive: zipfile.ZipFile, where: str, max_bytes: int) -> dict[str, NpyMember]:
    """The headers of the arrays a dataset uses, after checking the uncompressed size the zip
    directory declares against `max_bytes` and each header against its member's size (a header
    that declares a larger shape than its data is refused, never allocated)."""
    members = [info for info in archive.infolist() if not info.is_dir()]
    declared = sum(info.file_size for info in members)
    if declared > max_bytes:
        raise DatasetTooLarge(
            f"{where}: uncompressed size {declared} bytes exceeds the {max_bytes}-byte limit"
        )
    found = {info.filename.removesuffix(".npy"): info for info in members}
    arrays = {}
    for key in ARRAYS:
        if key in found:
            arrays[key] = _header(archive, found[key], key, where)
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise DatasetError(
            f"{where}: missing array {', '.join(repr(key) for key in missing)} "
            f"(found: {', '.join(sorted(found)) or 'none'})"
        )
    return arrays


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, where: str) -> NpyMember:
    try:
        with archive.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
            offset = stream.tell()
    except _READ_ERRORS as exc:
        raise DatasetError(f"{where}: cannot read array {key!r} ({_reason(exc)})") from None
    if dtype.hasobject:
        raise DatasetError(
            f"{where}: array {key!r} holds Python objects (pickles are never loaded); save "
            "numbers or strings"
        )
    member = NpyMember(info, tuple(int(d) for d in shape), dtype, bool(fortran_order), offset)
    if offset + member.data_bytes != info.file_size:
        raise DatasetError(
            f"{where}: array {key!r} declares shape {member.shape} of {dtype} "
            f"({member.data_bytes} bytes) but holds {info.file_size - offset} bytes"
        )
    return member


def _chunks(archive: zipfile.ZipFile, member: NpyMember, where: str) -> Iterator[bytes]:
    """The array's data bytes in pieces of about 1 MiB, whole elements each."""
    step = max(1, _CHUNK // max(1, member.dtype.itemsize)) * member.dtype.itemsize
    left = member.data_bytes
    try:
        with archive.open(member.info) as stream:
            stream.read(member.offset)
            while left > 0:
                piece = stream.read(min(step, left))
                if not piece:
                    raise EOFError("the data ends early")
                left -= len(piece)
                yield piece
    except _READ_ERRORS as exc:
        name = member.info.filename.removesuffix(".npy")
        raise DatasetError(f"{where}: cannot read array {name!r} ({_reason(exc)})") from None


def read_array(archive: zipfile.ZipFile, member: NpyMember, where: str) -> np.ndarray:
    """The whole array (its size was checked against its member's by `npz_arrays`)."""
    if member.data_bytes == 0:
        return np.empty(member.shape, dtype=member.dtype)
    try:
        flat = np.empty(member.count, dtype=member.dtype)
    except MemoryError:
        raise DatasetError(
            f"{where}: array of {member.data_bytes} bytes does not fit in memory"
        ) from None
    view = flat.view(np.uint8).reshape(-1)
    position = 0
    for piece in _chunks(archive, member, where):
        view[position : position + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
        position += len(piece)
    return flat.reshape(member.shape, order="F" if member.fortran_order else "C")


def iter_values(archive: zipfile.ZipFile, member: NpyMember, where: str) -> Iterator[np.ndarray]:
    """The array's elements, a chunk at a time, in storage order (for checks that need
    every value but not the array)."""
    carry = b""
    size = member.dtype.itemsize
    for piece in _chunks(archive, member, where):
        piece = carry + piece
        whole = len(piece) - len(piece) % size
        carry = piece[whole:]
        if whole:
            yield np.frombuffer(piece[:whole], dtype=member.dtype)


def image_layout(where: str, shape: tuple[int, ...]) -> tuple[bool, tuple[int, int, int]]:
    """(channels last?, (C, H, W)) of `x` from its shape alone; the channel axis is the one of
    size 1, 3 or 4 (the smaller if both); no image dimension may be 0."""
    if len(shape) < 1 or shape[0] == 0:
        raise DatasetError(f"{where}: x holds no images")
    if len(shape) not in (3, 4):
        raise DatasetError(
            f"{where}: x has shape {shape}; expected (N,H,W), (N,H,W,C) or (N,C,H,W)"
        )
    if 0 in shape[1:]:
        raise DatasetError(
            f"{where}: x has shape {shape}, an image dimension of 0; images need at least one "
            "channel and 1×1 pixel"
        )
    if len(shape) == 3:
        return False, (1, shape[1], shape[2])
    first, last = shape[1] in CHANNEL_COUNTS, shape[3] in CHANNEL_COUNTS
    if first and (not last or shape[1] < shape[3]):
        return False, (shape[1], shape[2], shape[3])
    if last:
        return True, (shape[3], shape[1], shape[2])
    raise DatasetError(
        f"{where}: cannot tell the channel axis of x with shape {shape} (C must be 1, 3 or 4)"
    )


def _channels_first(where: str, x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) from 3-D or 4-D `x`."""
    channels_last, _ = image_layout(where, x.shape)
    if x.ndim == 3:
        return x[:, None]
    return x.transpose(0, 3, 1, 2) if channels_last else x


def _pixel_kind(where: str, dtype: np.dtype) -> str:
    """How pixels of `dtype` are scaled: 'uint8', 'uint16', 'bool', 'int' (0..255) or 'float'."""
    if dtype == np.uint8:
        return "uint8"
    if dtype == np.uint16:
        return "uint16"
    if dtype == np.bool_:
        return "bool"
    if np.issubdtype(dtype, np.integer):
        return "int"
    if np.issubdtype(dtype, np.floating):
        return "float"
    raise DatasetError(f"{where}: x has dtype {dtype}; expected uint8 or float images")


def check_pixels(where: str, kind: str, values: np.ndarray, low: int = 0, high: int = 255) -> None:
    """Integer pixels must lie in 0..255 and float pixels be finite (`values`: any part of x)."""
    if kind == "int" and values.size and (values.min() < low or values.max() > high):
        raise DatasetError(
            f"{where}: integer x must hold values 0..255, found {values.min()}..{values.max()}"
        )
    if kind == "float" and not np.isfinite(values).all():
        raise DatasetError(f"{where}: x contains NaN or infinite values")


def _scaled(where: str, x: np.ndarray) -> np.ndarray:
    """float32 pixels in [0, 1]: uint8 / 255, uint16 / 65535, small ints / 255, floats as given."""
    kind = _pixel_kind(where, x.dtype)
    check_pixels(where, kind, x)
    if kind == "uint16":
        return x.astype(np.float32) / 65535.0
    if kind == "bool":
        return x.astype(np.float32)
    if kind == "float":
        scaled = x.astype(np.float32)
        check_pixels(where, kind, scaled)  # float64 beyond float32's range overflows
        return scaled
    return x.astype(np.float32) / 255.0


def labels_of(where: str, y: np.ndarray, count: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"{where}: y has shape {y.shape}; expected (N,) labels")
    if len(y) != count:
        raise DatasetError(
            f"{where}: length mismatch, x has {count} images but y has {len(y)} labels"
        )
    integral = np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_
    if not integral and np.issubdtype(y.dtype, np.floating):
        integral = bool(np.isfinite(y).all() and (y == np.round(y)).all())
    if not integral:
        raise DatasetError(
            f"{where}: y must hold integer class labels, found dtype {y.dtype} with non-integer "
            "values"
        )
    labels = y.astype(np.int64)
    if labels.max() >= MAX_CLASSES:
        raise DatasetError(f"{where}: label {labels.max()} is too large; labels must be 0..K-1")
    return labels


def class_names_of(where: str, raw_names: np.ndarray | None, labels: np.ndarray) -> tuple[str, ...]:
    """The `class_names` array as strings; without one, the label numbers."""
    if raw_names is None:
        return tuple(str(label) for label in range(int(labels.max(initial=0)) + 1))
    if raw_names.ndim == 1 and raw_names.dtype.kind in "US":
        return tuple(
            item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
            for item in raw_names
        )
    raise DatasetError(
        f"{where}: class_names must be a 1-D array of strings, got {raw_names.dtype} "
        f"{raw_names.shape}"
    )


def scan_npz(
    path: Path, *, where: str, max_bytes: int = MAX_UNCOMPRESSED_BYTES
) -> tuple[tuple[int, int, int], np.ndarray, tuple[str, ...]]:
    """((C, H, W), labels, class names) of an .npz, every pixel checked as `load_npz` checks
    it, without holding `x` in memory: it is read a chunk at a time."""
    with open_npz(path, where) as archive:
        arrays = npz_arrays(archive, where, max_bytes)
        x = arrays["x"]
        _, chw = image_layout(where, x.shape)
        kind = _pixel_kind(where, x.dtype)
        for values in iter_values(archive, x, where):
            check_pixels(where, kind, values)
            if kind == "float":
                check_pixels(where, kind, values.astype(np.float32))
        labels = labels_of(where, read_array(archive, arrays["y"], where), x.shape[0])
        raw_names = arrays.get("class_names")
        names = None if raw_names is None else read_array(archive, raw_names, where)
        return chw, labels, class_names_of(where, names, labels)


def load_npz(
    path: Path,
    *,
    name: str,
    where: str | None = None,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
) -> RawImages:
    """Load an `.npz` dataset; class names default to the label numbers. Messages name the
    file as `where` (default: its path)."""
    where = where or str(path)
    with open_npz(path, where) as archive:
        arrays = npz_arrays(archive, where, max_bytes)
        image_layout(where, arrays["x"].shape)
        x = read_array(archive, arrays["x"], where)
        y = read_array(archive, arrays["y"], where)
        raw_names = arrays.get("class_names")
        names = None if raw_names is None else read_array(archive, raw_names, where)
    try:
        images = _scaled(where, _channels_first(where, x))
    except MemoryError:
        raise DatasetError(f"{where}: x ({x.nbytes} bytes) does not fit in memory") from None
    labels = labels_of(where, y, len(images))
    class_names = class_names_of(where, names, labels)
    digest = digest_arrays(x, labels, np.array(class_names))
    return RawImages(name, np.ascontiguousarray(images), labels, class_names, str(path), digest)
