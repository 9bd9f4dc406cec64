"""What the CLI and the service call: export a search run into deployable files, find a file by
its download name, and record a measurement taken on a real target into the model card."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

FORMATS: tuple[str, ...] = ("onnx", "tflite", "onnx-int8", "tflite-int8", "tensorrt")


class DeployError(ValueError):
    """A run directory that cannot be deployed (no weights, weights that do not fit): one line."""


def export_run(
    run_dir: Path,
    formats: Sequence[str],
    *,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Export the trained child of a search run dir (arch.json + child.pt + metrics.json, as
    written by search/run.py) into run_dir/export/, verify each file against PyTorch, measure it
    on this machine, write run_dir/card.json + card.md. Returns {"files": {fmt: path},
    "errors": {fmt: message}, "card": card_dict}. A format that fails goes to "errors" and the
    others are still produced. Raises DeployError for a run dir without weights / weights that
    do not fit the architecture."""
    raise NotImplementedError("deploy.api.export_run: being implemented (issue 4)")


def artifact_path(run_dir: Path, name: str) -> Path:
    """The file for a download name: each of FORMATS, "card.json", "card.md". Raises
    FileNotFoundError with a clear message if not produced."""
    raise NotImplementedError("deploy.api.artifact_path: being implemented (issue 4)")


def record_target_measurement(
    run_dir: Path, device: str, fmt: str, measurement: dict[str, Any]
) -> None:
    """Store an end-to-end measurement of an exported file taken on a real target and rewrite
    card.json / card.md so the card shows measured-on-target next to LUT-predicted latency."""
    raise NotImplementedError("deploy.api.record_target_measurement: being implemented (issue 4)")
