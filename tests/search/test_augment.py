"""The child's shift augmentation: seeded, shape-preserving, and a real translation."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from search.augment import random_shift
from search.train import train_child


def _dots(n: int, size: int = 9) -> torch.Tensor:
    """n single-channel images, each black with one white pixel in the centre."""
    images = torch.zeros(n, 1, size, size)
    images[:, 0, size // 2, size // 2] = 1.0
    return images


def test_zero_shift_is_the_batch_itself() -> None:
    images = _dots(4)
    assert random_shift(images, 0, torch.Generator().manual_seed(0)) is images


def test_every_image_moves_by_its_own_offset_within_the_limit() -> None:
    images = _dots(400)
    shifted = random_shift(images, 2, torch.Generator().manual_seed(1))
    assert shifted.shape == images.shape
    positions = [divmod(int(img.flatten().argmax()), 9) for img in shifted]
    offsets = {(row - 4, col - 4) for row, col in positions}
    assert all(float(img.sum()) == 1.0 for img in shifted)  # moved, never duplicated or lost
    assert offsets == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}


def test_edges_are_replicated_not_zero_filled() -> None:
    images = torch.full((8, 3, 6, 6), 5.0)
    shifted = random_shift(images, 3, torch.Generator().manual_seed(2))
    assert torch.equal(shifted, images)


def test_the_same_seed_gives_the_same_shifts() -> None:
    images = torch.randn(16, 1, 12, 12)
    a = random_shift(images, 2, torch.Generator().manual_seed(7))
    b = random_shift(images, 2, torch.Generator().manual_seed(7))
    c = random_shift(images, 2, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 81, 3))


@pytest.mark.parametrize("shift", [0, 2])
def test_train_child_with_a_shift_is_seeded(shift: int) -> None:
    generator = torch.Generator().manual_seed(3)
    data = TensorDataset(torch.randn(64, 1, 9, 9, generator=generator), torch.arange(64) % 3)

    def trained() -> list[torch.Tensor]:
        model = _model()
        train_child(model, data, data, epochs=1, seed=5, batch_size=16, shift_px=shift)
        return [p.detach().clone() for p in model.parameters()]

    first, again = trained(), trained()
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    if shift:  # the augmentation changes what the weights see
        plain = _model()
        train_child(plain, data, data, epochs=1, seed=5, batch_size=16)
        assert not all(torch.equal(a, b) for a, b in zip(first, plain.parameters(), strict=True))
