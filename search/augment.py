"""Seeded training-time augmentation of image batches (NCHW tensors)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, max_px: int, generator: torch.Generator) -> torch.Tensor:
    """Each image translated by its own random offset of up to `max_px` pixels in each
    direction, edges replicated (the standard pad-and-crop augmentation of small-image
    classification); `max_px` 0 returns the batch unchanged."""
    if max_px <= 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (max_px, max_px, max_px, max_px), mode="replicate")
    offsets = torch.randint(0, 2 * max_px + 1, (n, 2), generator=generator).tolist()
    return torch.stack(
        [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)]
    )
