"""Search checkpoints: supernet weights and architecture parameters, both optimiser states, RNG
states, position and LUT version, written atomically (temporary file + os.replace)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from common.files import write_atomically

CHECKPOINT = "checkpoint.pt"
# 2: the supernet's MBConv candidates share nested kernels (search.nesting), so a format-1
# supernet's weights no longer fit it.
FORMAT_VERSION = 2


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    path = directory / CHECKPOINT
    payload = {
        "format_version": FORMAT_VERSION,
        "python_random": random.getstate(),
        "torch_random": torch.get_rng_state(),
        **state,
    }
    write_atomically(path, lambda tmp: torch.save(payload, tmp))
    return path


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    path = directory / CHECKPOINT
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(
            f"checkpoint {path} is unreadable ({exc}); delete it to start over"
        ) from None
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {path} was written by another version of hwnas (format "
            f"{payload.get('format_version')!r}, this one reads {FORMAT_VERSION}); start a new run "
            "(another --out) or delete it"
        )
    random.setstate(payload["python_random"])
    torch.set_rng_state(payload["torch_random"])
    return payload
