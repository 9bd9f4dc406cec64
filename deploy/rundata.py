"""The dataset a run was trained on, reloaded exactly (same spec, seed, splits, resolution) and
checked against the content hash in metrics.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deploy.child import DeployError

CALIBRATION_SAMPLES = 256  # images from the train split that calibrate int8 ranges


@dataclass(frozen=True)
class EvalData:
    """NCHW float32 pixels in [0, 1] (before the train split's normalisation, as exported files
    take them): calibration images (train split) and the labelled test split; with the `mean`
    and `std` that the network was trained behind."""

    name: str
    calibration: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


def run_dataset(metrics: dict[str, Any], resolution: int) -> EvalData:
    from search.data import DatasetError, load_dataset
    from search.data.builtins import dataset_names

    record = metrics.get("dataset")
    if not isinstance(record, dict) or "content_hash" not in record:
        raise DeployError("metrics.json has no dataset record: cannot verify on real inputs")
    name, source = str(record.get("name")), str(record.get("source"))
    spec = name if name in dataset_names() else source
    try:
        data = load_dataset(spec, seed=int(metrics.get("seed", 0)), resolution=resolution)
    except DatasetError as exc:
        raise DeployError(f"the run's dataset cannot be reloaded: {exc}") from None
    if data.content_hash != record["content_hash"]:
        raise DeployError(
            f"dataset {spec} changed since the run (content hash {data.content_hash}, "
            f"the run used {record['content_hash']})"
        )
    from deploy.contract import pixels_from_normalised

    images, labels = data.test.tensors
    return EvalData(
        name=data.name,
        calibration=pixels_from_normalised(
            calibration_images(data.train.tensors[0]), data.mean, data.std
        ),
        test_images=pixels_from_normalised(images.numpy(), data.mean, data.std),
        test_labels=labels.numpy(),
        mean=data.mean,
        std=data.std,
    )


def calibration_images(train_images: Any, count: int = CALIBRATION_SAMPLES) -> np.ndarray:
    """A fixed, evenly spaced selection of training images (the splits are shuffled already)."""
    array = np.asarray(train_images, dtype=np.float32)
    step = max(1, len(array) // count)
    return np.ascontiguousarray(array[::step][:count])


def synthetic_data(input_shape: tuple[int, ...], num_classes: int, count: int = 64) -> EvalData:
    """Random [0, 1] pixels for a child without a dataset (random weights, `--arch`): fidelity
    only."""
    rng = np.random.default_rng(0)
    images = rng.random((count, *input_shape), dtype=np.float32)
    labels = rng.integers(0, num_classes, count)
    return EvalData("random-normal", images[: count // 2], images, labels)
