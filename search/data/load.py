"""`load_dataset`: resolve a spec (built-in name or path), load it, split, resize and normalise."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from search.data.archive import extracted_zip
from search.data.arrays import load_npz
from search.data.base import DatasetError, DatasetSplits, RawImages
from search.data.builtins import dataset_names, load_builtin
from search.data.folder import class_root, load_image_folder
from search.data.splits import channel_stats, normalise, resize_images, stratified_split

MAX_RESOLUTION = 2048


def _check_arguments(spec: str, seed: int, val: float, test: float, resolution: int | None) -> None:
    if not (0.0 < val < 1.0 and 0.0 < test < 1.0 and val + test < 1.0):
        raise DatasetError(
            f"{spec}: val_fraction={val} and test_fraction={test} must each be > 0 and sum to < 1"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError(f"{spec}: seed must be a non-negative integer, got {seed!r}")
    if resolution is not None and (
        isinstance(resolution, bool)
        or not isinstance(resolution, int)
        or not 1 <= resolution <= MAX_RESOLUTION
    ):
        raise DatasetError(
            f"{spec}: resolution must be an integer in 1..{MAX_RESOLUTION}, got {resolution!r}"
        )


def _inside(archive: Path, member: Path) -> str:
    """How errors name a file inside an archive: `data.zip:cats/1.png`."""
    return f"{archive}:{member.as_posix()}" if member.parts else str(archive)


def _load_raw(spec: str, resolution: int | None) -> RawImages:
    if spec in dataset_names():
        return load_builtin(spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        return load_image_folder(path, name=path.name, source=str(path), resolution=resolution)
    if path.is_file() and path.suffix.lower() == ".zip":
        with extracted_zip(path) as extracted:
            root = class_root(extracted)
            return load_image_folder(
                root,
                name=path.stem,
                source=str(path),
                resolution=resolution,
                describe=lambda inner: _inside(path, inner.relative_to(extracted)),
            )
    if path.is_file() and path.suffix.lower() == ".npz":
        return load_npz(path, name=path.stem)
    if path.exists():
        raise DatasetError(f"{path}: unsupported dataset file; expected a directory, .zip or .npz")
    raise DatasetError(
        f"{spec}: unknown dataset; not a built-in ({', '.join(dataset_names())}) "
        "and no such file or directory"
    )


def _source_size(spec: str, raw: RawImages, resolution: int | None) -> tuple[int, int] | None:
    """The images' size before `load_dataset` resized them; None for a folder resized as read
    (its images may differ in size)."""
    folder = spec not in dataset_names() and Path(spec).expanduser().suffix.lower() != ".npz"
    if folder and resolution is not None:
        return None
    return int(raw.images.shape[2]), int(raw.images.shape[3])


def _color(spec: str, channels: int) -> str:
    """Channel order: Pillow gives folders RGB; an .npz's colour channels are as stored."""
    if channels == 1:
        return "grayscale"
    return "as stored" if Path(spec).expanduser().suffix.lower() == ".npz" else "RGB"


def _check_labels(raw: RawImages) -> int:
    """The number of classes, after checking every label names a class that has samples."""
    if raw.labels.min() < 0:
        raise DatasetError(f"{raw.source}: labels must be >= 0, found {raw.labels.min()}")
    num_classes = len(raw.class_names)
    if raw.labels.max() >= num_classes:
        raise DatasetError(
            f"{raw.source}: label {raw.labels.max()} has no class name ({num_classes} class names)"
        )
    if num_classes < 2:
        raise DatasetError(f"{raw.source}: needs at least 2 classes, found {num_classes}")
    counts = np.bincount(raw.labels, minlength=num_classes)
    if (counts == 0).any():
        empty = raw.class_names[int(np.flatnonzero(counts == 0)[0])]
        raise DatasetError(f"{raw.source}: class {empty!r} has no samples")
    return num_classes


def load_dataset(
    spec: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    resolution: int | None = None,
) -> DatasetSplits:
    """Load a dataset and split it into train / architecture-validation / test.

    `spec` is a built-in name (`dataset_names()`) or a path to an ImageFolder directory, a `.zip` of
    one, or an `.npz` (a built-in name wins over a same-named folder: write `./digits` for that).
    Splits are stratified by class and fixed by `seed`; `resolution` resizes every image to a square
    (bilinear). Anything wrong raises `DatasetError` naming the file.
    """
    _check_arguments(spec, seed, val_fraction, test_fraction, resolution)
    raw = _load_raw(spec, resolution)
    num_classes = _check_labels(raw)
    train_idx, val_idx, test_idx = stratified_split(
        raw.labels,
        num_classes=num_classes,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
    )
    if min(len(train_idx), len(val_idx), len(test_idx)) == 0:
        raise DatasetError(
            f"{raw.source}: {len(raw.labels)} samples are too few to split into train "
            f"({len(train_idx)}), val ({len(val_idx)}) and test ({len(test_idx)})"
        )
    source_size = _source_size(spec, raw, resolution)
    images = raw.images if resolution is None else resize_images(raw.images, resolution)
    mean, std = channel_stats(images[train_idx])
    channels, height, width = images.shape[1:]
    hash_input = f"{raw.digest}:{channels}x{height}x{width}"  # the resolution changes the data

    def subset(indices: np.ndarray) -> TensorDataset:
        return TensorDataset(
            normalise(images[indices], mean, std),
            torch.from_numpy(raw.labels[indices].astype(np.int64)),
        )

    return DatasetSplits(
        name=raw.name,
        train=subset(train_idx),
        val=subset(val_idx),
        test=subset(test_idx),
        num_classes=num_classes,
        input_shape=(int(channels), int(height), int(width)),
        class_names=raw.class_names,
        mean=mean,
        std=std,
        source=raw.source,
        content_hash=hashlib.sha256(hash_input.encode()).hexdigest()[:16],
        source_size=source_size,
        color=_color(spec, int(channels)),
    )
