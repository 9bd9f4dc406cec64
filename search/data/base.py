"""The public result type (`DatasetSplits`), the error type, and the in-memory form every loader returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from torch.utils.data import TensorDataset


class DatasetError(ValueError):
    """A dataset that cannot be used as asked; the message is one line naming the file or spec."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True)
class DatasetSplits:
    """Train / architecture-validation / test splits of one dataset, ready for the supernet.

    Images are float32 NCHW, scaled to [0, 1] and then normalised with the per-channel `mean` and
    `std` of the train split; labels are int64 class indices into `class_names`.
    `content_hash` identifies the loaded data and the resolution; the seed and fractions that
    produced the splits are not part of it (record them next to it). `source_size` is the images'
    (H, W) before resizing (None when they came in several sizes) and `color` their channel order
    (`grayscale`, `RGB`, or `as stored` for arrays whose order the loader cannot know): with the
    mean and std they are the input contract an exported model states.
    """

    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    num_classes: int
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    content_hash: str
    source_size: tuple[int, int] | None = None
    color: str = "grayscale"

    def record(self) -> dict[str, object]:
        """A JSON-ready summary for metrics, job records and model cards."""
        return {
            "name": self.name,
            "source": self.source,
            "content_hash": self.content_hash,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "mean": list(self.mean),
            "std": list(self.std),
            "source_size": None if self.source_size is None else list(self.source_size),
            "color": self.color,
        }


@dataclass(frozen=True)
class RawImages:
    """What a loader hands to `load_dataset`: all images before splitting and normalisation.

    `images` is float32 (N, C, H, W) in [0, 1]; `digest` is the sha256 hex of the source arrays.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str
    digest: str


def digest_arrays(*arrays: np.ndarray, hasher: hashlib._Hash | None = None) -> str:
    """sha256 hex over the dtype, shape and bytes of each array (feeds `hasher` if given)."""
    hasher = hasher or hashlib.sha256()
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        hasher.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        hasher.update(contiguous.tobytes())
    return hasher.hexdigest()
