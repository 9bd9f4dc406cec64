"""`.npz` datasets: `x` images (N,H,W), (N,H,W,C) or (N,C,H,W); `y` integer labels; optional `class_names`."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from search.data.base import DatasetError, RawImages, digest_arrays

CHANNEL_COUNTS = frozenset({1, 3, 4})
MAX_CLASSES = 100_000


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: cannot read .npz ({exc})") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path}: holds a single array; expected an .npz with 'x' and 'y'")
    try:
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: cannot read .npz ({exc})") from exc


def _channels_first(path: Path, x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) from 3-D or 4-D `x`; the channel axis is the one of size 1, 3 or 4 (the smaller if both)."""
    if x.ndim == 3:
        return x[:, None]
    if x.ndim != 4:
        raise DatasetError(
            f"{path}: x has shape {x.shape}; expected (N,H,W), (N,H,W,C) or (N,C,H,W)"
        )
    first, last = x.shape[1] in CHANNEL_COUNTS, x.shape[3] in CHANNEL_COUNTS
    if first and (not last or x.shape[1] < x.shape[3]):
        return x
    if last:
        return x.transpose(0, 3, 1, 2)
    raise DatasetError(
        f"{path}: cannot tell the channel axis of x with shape {x.shape} (C must be 1, 3 or 4)"
    )


def _scaled(path: Path, x: np.ndarray) -> np.ndarray:
    """float32 pixels in [0, 1]: uint8 / 255, uint16 / 65535, small ints / 255, floats as given."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if x.dtype == np.uint16:
        return x.astype(np.float32) / 65535.0
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DatasetError(
                f"{path}: integer x must hold values 0..255, found {x.min()}..{x.max()}"
            )
        return x.astype(np.float32) / 255.0
    if np.issubdtype(x.dtype, np.floating):
        scaled = x.astype(np.float32)
        if not np.isfinite(scaled).all():
            raise DatasetError(f"{path}: x contains NaN or infinite values")
        return scaled
    raise DatasetError(f"{path}: x has dtype {x.dtype}; expected uint8 or float images")


def _labels(path: Path, y: np.ndarray, count: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"{path}: y has shape {y.shape}; expected (N,) labels")
    if len(y) != count:
        raise DatasetError(
            f"{path}: length mismatch, x has {count} images but y has {len(y)} labels"
        )
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        return y.astype(np.int64)
    if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all():
        return y.astype(np.int64)
    raise DatasetError(
        f"{path}: y must hold integer class labels, found dtype {y.dtype} with non-integer values"
    )


def load_npz(path: Path, *, name: str) -> RawImages:
    """Load an `.npz` dataset; class names default to the label numbers."""
    arrays = _read(path)
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise DatasetError(
            f"{path}: missing array {', '.join(repr(key) for key in missing)} (found: {', '.join(sorted(arrays)) or 'none'})"
        )
    x, y = arrays["x"], arrays["y"]
    if x.ndim < 1 or len(x) == 0:
        raise DatasetError(f"{path}: x holds no images")
    images = _scaled(path, _channels_first(path, x))
    labels = _labels(path, y, len(images))
    if labels.max() >= MAX_CLASSES:
        raise DatasetError(f"{path}: label {labels.max()} is too large; labels must be 0..K-1")
    raw_names = arrays.get("class_names")
    if raw_names is None:
        class_names = tuple(str(label) for label in range(int(labels.max(initial=0)) + 1))
    elif raw_names.ndim == 1 and raw_names.dtype.kind in "US":
        class_names = tuple(
            str(item.decode() if isinstance(item, bytes) else item) for item in raw_names
        )
    else:
        raise DatasetError(
            f"{path}: class_names must be a 1-D array of strings, got {raw_names.dtype} {raw_names.shape}"
        )
    digest = digest_arrays(x, labels, np.array(class_names))
    return RawImages(name, np.ascontiguousarray(images), labels, class_names, str(path), digest)
