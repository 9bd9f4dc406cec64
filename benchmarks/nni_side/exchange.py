"""What hwnas hands NNI and takes back: the space as JSON candidate for candidate (OpSpecs, LUT
costs), the data splits as an .npz, and NNI's exported choices mapped back to an hwnas
architecture string. Runs in hwnas's virtual environment; `run_nni.py` reads the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from search.cost import LatencyCostModel
from search.data.base import DatasetSplits
from search.spaces.base import SearchSpace

SPLITS = ("train", "val", "test")


def space_document(space: SearchSpace, model: LatencyCostModel) -> dict[str, Any]:
    """The whole network in order — stem, fixed and searchable blocks, head — as OpSpec dicts;
    each searchable layer with its label, candidate tokens, their OpSpecs and LUT costs (ms);
    plus the cost model's constant, so NNI's penalty predicts what `model.cost` does."""
    if model.space != space.spec_string:
        raise ValueError(f"cost model is of {model.space}, the space is {space.spec_string}")
    first = space.architecture([slot.candidates[0] for slot in space.layers])
    specs = space.decode(first)
    body, slots = (
        specs[1:-3],
        iter(zip(space.layers, space.candidate_specs(), model.layer_costs, strict=True)),
    )
    order = [_fixed(specs[0])]
    for kind, spec in zip(space.block_order(), body, strict=True):
        if kind == "fixed":
            order.append(_fixed(spec))
            continue
        slot, candidate_specs, costs = next(slots)
        order.append(
            {
                "kind": "slot",
                "label": slot.label,
                "candidates": list(slot.candidates),
                "specs": [s.to_dict() for s in candidate_specs],
                "costs_ms": list(costs),
            }
        )
    order += [_fixed(s) for s in specs[-3:]]
    return {
        "space": space.spec_string,
        "arch_prefix": first.to_string().split(":", 1)[0],
        "num_classes": int(space.num_classes),  # type: ignore[arg-type]
        "input_shape": list(space.input_shape),
        "constant_ms": model.constant_ms,
        "order": order,
    }


def _fixed(spec: Any) -> dict[str, Any]:
    return {"kind": "fixed", "spec": spec.to_dict()}


def write_splits(data: DatasetSplits, path: Path) -> Path:
    """The train / val / test tensors (already normalised) as `<split>_x`, `<split>_y` arrays."""
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        images, labels = getattr(data, split).tensors
        arrays[f"{split}_x"] = images.numpy().astype(np.float32)
        arrays[f"{split}_y"] = labels.numpy().astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def arch_of(space: SearchSpace, choices: dict[str, str]) -> str:
    """NNI's exported {layer label: candidate token} as the hwnas architecture string (validated:
    every layer chosen, every token a candidate of its layer)."""
    labels = [slot.label for slot in space.layers]
    extra = set(choices) - set(labels)
    missing = [label for label in labels if label not in choices]
    if extra or missing:
        raise ValueError(
            f"NNI's choices do not match {space.name}: missing {missing}, extra {extra}"
        )
    return space.architecture([choices[label] for label in labels]).to_string()
