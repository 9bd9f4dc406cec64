"""Seeded stratified train/val/test splits, bilinear resizing and train-split normalisation."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _share(count: int, fraction: float) -> int:
    return math.floor(count * fraction + 0.5)


def stratified_split(
    labels: np.ndarray, *, num_classes: int, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint index arrays (train, val, test), each class divided by the fractions.

    A class with at least three samples puts at least one in every split and keeps at least one for
    training; smaller classes fill train first, then val. Each split is shuffled, so it is not sorted
    by class. The same seed always gives the same splits.
    """
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for label in range(num_classes):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = len(members)
        if count >= 3:
            n_test = min(max(_share(count, test_fraction), 1), count - 2)
            n_val = min(max(_share(count, val_fraction), 1), count - 1 - n_test)
        else:
            n_test, n_val = 0, count - 1
        n_train = count - n_val - n_test
        parts[0].append(members[:n_train])
        parts[1].append(members[n_train : n_train + n_val])
        parts[2].append(members[n_train + n_val :])
    train, val, test = (rng.permutation(np.concatenate(part)).astype(np.int64) for part in parts)
    return train, val, test


def resize_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """Bilinear resize of float32 (N, C, H, W) images to resolution×resolution (antialiased when shrinking)."""
    if images.shape[2:] == (resolution, resolution):
        return images
    shrinking = images.shape[2] > resolution or images.shape[3] > resolution
    resized = F.interpolate(
        torch.from_numpy(np.ascontiguousarray(images)),
        size=(resolution, resolution),
        mode="bilinear",
        align_corners=False,
        antialias=shrinking,
    )
    return resized.clamp_(0.0, 1.0).numpy()


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of (N, C, H, W) images; a constant channel gets std 1 (no scaling)."""
    mean = images.mean(axis=(0, 2, 3), dtype=np.float64)
    std = images.std(axis=(0, 2, 3), dtype=np.float64)
    std = np.where(std > 1e-6, std, 1.0)
    return tuple(float(value) for value in mean), tuple(float(value) for value in std)


def normalise(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(images - mean) / std per channel, as a float32 tensor."""
    shift = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    scale = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return torch.from_numpy(((images - shift) / scale).astype(np.float32, copy=False))
