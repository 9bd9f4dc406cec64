"""Export an architecture with random weights (no search run): for latency work on a target.
The files are checked against PyTorch on random inputs (fidelity only: there is no dataset)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deploy.child import DeployError, random_child
from deploy.formats import ExportJob, get_format, parse_formats
from deploy.run import export_formats
from deploy.rundata import synthetic_data
from deploy.verify import reference_logits, verify_file


def export_architecture(
    arch_text: str,
    formats: Sequence[str],
    output: Path | None,
    *,
    seed: int = 0,
    nhwc: bool = False,
    dynamic_batch: bool = False,
    tensorrt_precision: str = "fp16",
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Path], dict[str, str], dict[str, Any]]:
    """Returns (files, errors, checks). `output` is the file for one format, else a directory
    (default: the current directory) that gets each format's usual file name."""
    try:
        names = parse_formats(list(formats))
    except ValueError as exc:
        raise DeployError(str(exc)) from None
    child = random_child(arch_text, seed)
    paths = _paths(names, output)
    data = synthetic_data(child.space.input_shape[1:], int(child.space.num_classes))  # type: ignore[arg-type]
    job = ExportJob(
        module=child.module,
        input_shape=tuple(child.space.input_shape[1:]),  # type: ignore[arg-type]
        calibration=data.calibration,
        out_dir=next(iter(paths.values())).parent,
        nhwc=nhwc,
        dynamic_batch=dynamic_batch,
        tensorrt_precision=tensorrt_precision,
    )
    emit = on_event or (lambda event: None)
    errors = export_formats(job, names, paths, emit)
    files = {name: paths[name] for name in names if name not in errors}
    reference = reference_logits(child.module, data.test_images)
    checks = {
        name: verify_file(
            path,
            data.test_images,
            data.test_labels,
            reference,
            int8=not get_format(name).exact,
            real_labels=False,
        )
        for name, path in files.items()
        if get_format(name).verifiable
    }
    return files, errors, checks


def _paths(names: list[str], output: Path | None) -> dict[str, Path]:
    if output is not None and len(names) == 1 and not output.is_dir():
        return {names[0]: output}
    directory = output or Path.cwd()
    if directory.exists() and not directory.is_dir():
        raise DeployError(f"{directory} is a file: several formats need a directory for -o")
    return {name: directory / get_format(name).file_name for name in names}
