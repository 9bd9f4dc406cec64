"""The synthetic `cluttered-mnist` built-in: fixed content, sizes, held-out test digits, balance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search.data import dataset_names, load_dataset
from search.data.builtins import load_builtin
from search.data.cluttered import NAME, RECIPE, build_cluttered
from search.data.splits import resize_images

# sha256 of the uint8 images and labels as built (RawImages.digest); changes only with the recipe
DIGEST = "fc02de1032748136da33f8acd0802b11b73b6704227ccb292780fcbbd04ca3b6"


@pytest.fixture(scope="module")
def splits():
    return load_dataset(NAME, seed=0, resolution=28)


def test_registered_and_marked_synthetic() -> None:
    assert NAME in dataset_names()
    raw = load_builtin(NAME)
    assert raw.source.startswith("synthetic")
    assert all("synthetic" in name for name in raw.class_names)
    assert len(raw.class_names) == 10
    assert [name.split()[0] for name in raw.class_names] == [str(d) for d in range(10)]


def test_content_is_fixed() -> None:
    raw = load_builtin(NAME)
    assert raw.digest == DIGEST
    assert load_builtin(NAME).digest == raw.digest


def test_shapes_and_split_sizes(splits) -> None:
    raw = load_builtin(NAME)
    assert raw.images.shape == (10_000, 1, 28, 28)
    assert raw.images.dtype == np.float32
    assert raw.images.min() >= 0.0 and raw.images.max() <= 1.0
    # 8-bit pixels, as the exported models' uint8 input takes them
    assert np.array_equal(np.rint(raw.images * 255) / 255, raw.images)
    assert splits.input_shape == (1, 28, 28)
    assert splits.num_classes == 10
    assert {k: len(getattr(splits, k)) for k in ("train", "val", "test")} == {
        "train": 6_000,
        "val": 2_000,
        "test": 2_000,
    }


def test_labels_balanced(splits) -> None:
    assert np.bincount(load_builtin(NAME).labels).tolist() == [1_000] * 10
    for part, per_class in ((splits.train, 600), (splits.val, 200), (splits.test, 200)):
        assert torch.bincount(part.tensors[1], minlength=10).tolist() == [per_class] * 10


def test_splits_are_load_datasets(splits) -> None:
    """The split the builder held digits out for is the one `load_dataset` makes at seed 0."""
    built = build_cluttered()
    images = built.pixels.astype(np.float32) / 255.0
    mean, std = splits.mean[0], splits.std[0]
    for name, indices in zip(("train", "val", "test"), built.splits, strict=True):
        tensors = getattr(splits, name).tensors
        expected = torch.from_numpy((images[indices] - np.float32(mean)) / np.float32(std))
        assert torch.allclose(tensors[0], expected, atol=1e-6), name
        assert torch.equal(tensors[1], torch.from_numpy(built.labels[indices])), name


def test_test_digits_held_out() -> None:
    built = build_cluttered()
    train, val, test = (
        set(built.main[part].tolist()) | set(built.fragments[part].ravel().tolist())
        for part in built.splits
    )
    assert not train & test
    assert not val & test
    assert not train & val
    assert (len(train), len(val), len(test)) == (3_000, 1_000, 1_000)  # mnist5k's 5,000 digits


def test_each_image_is_its_labelled_digit() -> None:
    built = build_cluttered()
    mnist = load_builtin("mnist5k")
    assert np.array_equal(mnist.labels[built.main], built.labels)
    assert np.bincount(built.main, minlength=5_000).tolist() == [2] * 5_000
    assert not (built.fragments == built.main[:, None]).any()  # clutter from other digits
    # each of the first 300 images holds its digit, shrunk, in one window (drawn over by clutter
    # at most: composition takes the brighter pixel)
    size = RECIPE.digit
    shrunk = resize_images(mnist.images[built.main[:300]], size)[:, 0] * 255
    windows = np.lib.stride_tricks.sliding_window_view(built.pixels[:300, 0], (size, size), (1, 2))
    digits = np.rint(shrunk)[:, None, None]
    assert (windows >= digits).all(axis=(3, 4)).any(axis=(1, 2)).all()
