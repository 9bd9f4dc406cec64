"""A small trained run directory (arch.json, child.pt, metrics.json) without a search: for tests
and benchmarks of the deploy pipeline. Written with search.run's own writer, so it is the same
layout `hwnas search` produces."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any


def make_trained_run(
    out_dir: Path,
    *,
    space: str = "fbnet-tiny",
    dataset: str = "mnist5k",
    arch_seed: int = 0,
    epochs: int = 1,
    seed: int = 0,
    choices: list[str] | None = None,
) -> dict[str, Any]:
    """Train one architecture of `space` (random by `arch_seed`, or `choices`) on `dataset` and
    write the run directory; returns its metrics."""
    import torch

    from search.data import load_dataset
    from search.run import bind_space, write_outputs
    from search.spaces.complexity import total_macs
    from search.train import train_child

    probe = bind_space(space, _Shape(1, 10))
    data = load_dataset(dataset, seed=seed, resolution=int(probe.resolution))  # type: ignore[arg-type]
    bound = bind_space(space, data)
    arch = bound.architecture(choices) if choices else bound.sample(random.Random(arch_seed))
    torch.manual_seed(seed)
    child = bound.build(arch)
    trained = train_child(child, data.train, data.val, epochs=epochs, seed=seed, test=data.test)
    indices = [slot.candidates.index(c) for slot, c in zip(bound.layers, arch.choices, strict=True)]
    metrics = {
        "arch": arch.to_string(),
        "strategy": "fixed",
        "val_accuracy": trained.val_accuracy,
        "test_accuracy": trained.test_accuracy,
        "predicted_latency_ms": {},
        "params": sum(p.numel() for p in child.parameters()),
        "macs": total_macs(bound.decode(arch)),
        "child_epochs": epochs,
        "seed": seed,
        "dataset": data.record(),
    }
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_outputs(Path(out_dir), bound, arch, indices, child, metrics)
    return metrics


class _Shape:
    """Enough of a dataset for bind_space before the data is loaded (only the resolution)."""

    def __init__(self, channels: int, classes: int) -> None:
        self.input_shape = (channels, 0, 0)
        self.num_classes = classes
