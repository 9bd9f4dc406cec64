"""`check_dataset`: is an uploaded file a dataset the search can load? Checked as `load_dataset`
checks it, without holding the dataset in memory: sizes and shapes come from the zip directory
and the array headers, pixels are read a chunk or an image at a time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.data.archive import MAX_UNCOMPRESSED_BYTES, extracted_zip
from search.data.arrays import scan_npz
from search.data.base import DatasetError
from search.data.folder import class_root, scan_image_folder
from search.data.splits import stratified_split

# what `load_dataset` splits with by default (a job's seed changes which samples, not how many)
VAL_FRACTION = TEST_FRACTION = 0.2


@dataclass(frozen=True)
class DatasetSummary:
    input_shape: tuple[int, int, int]  # (C, H, W)
    class_names: tuple[str, ...]
    samples: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def check_dataset(
    path: Path,
    fmt: str,
    *,
    where: str,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
    work_dir: Path | None = None,
) -> DatasetSummary:
    """The summary of a `zip` (ImageFolder) or `npz` file, or DatasetError naming it as `where`
    (DatasetTooLarge when its uncompressed size exceeds `max_bytes`). A zip is extracted under
    `work_dir` (default: the system's temporary directory) and deleted afterwards."""
    if fmt == "npz":
        shape, labels, class_names = scan_npz(path, where=where, max_bytes=max_bytes)
    elif fmt == "zip":
        with extracted_zip(path, max_bytes=max_bytes, where=where, parent=work_dir) as root:

            def describe(inner: Path) -> str:
                relative = inner.relative_to(root)
                return f"{where}:{relative.as_posix()}" if relative.parts else where

            shape, labels, class_names = scan_image_folder(class_root(root), describe=describe)
    else:
        raise DatasetError(f"{where}: unsupported format {fmt!r}; expected zip or npz")
    _check_labels(where, labels, class_names)
    return DatasetSummary(shape, class_names, len(labels))


def _check_labels(where: str, labels: np.ndarray, class_names: tuple[str, ...]) -> None:
    """Every label names a class, every class has samples, and the default split leaves each
    of train, val and test some."""
    if labels.min() < 0:
        raise DatasetError(f"{where}: labels must be >= 0, found {labels.min()}")
    num_classes = len(class_names)
    if labels.max() >= num_classes:
        raise DatasetError(
            f"{where}: label {labels.max()} has no class name ({num_classes} class names)"
        )
    if num_classes < 2:
        raise DatasetError(f"{where}: needs at least 2 classes, found {num_classes}")
    counts = np.bincount(labels, minlength=num_classes)
    if (counts == 0).any():
        empty = class_names[int(np.flatnonzero(counts == 0)[0])]
        raise DatasetError(f"{where}: class {empty!r} has no samples")
    splits = stratified_split(
        labels,
        num_classes=num_classes,
        val_fraction=VAL_FRACTION,
        test_fraction=TEST_FRACTION,
        seed=0,
    )
    if min(len(split) for split in splits) == 0:
        train, val, test = (len(split) for split in splits)
        raise DatasetError(
            f"{where}: {len(labels)} samples are too few to split into train ({train}), "
            f"val ({val}) and test ({test})"
        )
