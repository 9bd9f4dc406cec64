"""The deploy pipeline over a search run directory: open it (child + dataset), export formats
into run_dir/export/ (taking pixels, normalisation inside: deploy.contract), verify and measure
each file on the test split's pixels, keep the results in export/checks.json."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.files import write_json_atomically as write_json
from deploy.checks import CHECKS_FILE, file_digest, fresh_entry, read_json_or_empty
from deploy.child import Child, load_run_child, read_json
from deploy.contract import (
    deployable_module,
    file_pixels,
    pixel_max,
    quantization_pair,
    read_inputs,
)
from deploy.formats import ExportFailed, ExportJob, get_format, parse_formats
from deploy.measure import lut_unit_for, measure_exported
from deploy.rundata import EvalData, run_dataset
from deploy.verify import reference_logits, verify_file

EXPORT_DIR = "export"
Emit = Callable[[dict[str, Any]], None]


@dataclass
class OpenRun:
    run_dir: Path
    child: Child
    metrics: dict[str, Any]
    data: EvalData
    real_labels: bool = True
    _references: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _deployable: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def export_dir(self) -> Path:
        return self.run_dir / EXPORT_DIR

    def deployable(self) -> Any:
        """The child behind the train split's normalisation: a module on [0, 1] pixels."""
        if "module" not in self._deployable:
            self._deployable["module"] = deployable_module(
                self.child.module, self.data.mean, self.data.std, "float"
            )
        return self._deployable["module"]

    def test_inputs(self, pixels: str) -> np.ndarray:
        """The test split as a file taking `pixels` gets it (float32 values)."""
        return file_pixels(self.data.test_images, pixels)

    def reference(self, pixels: str = "float") -> np.ndarray:
        """PyTorch's logits for the test split as a file taking `pixels` sees it."""
        if pixels not in self._references:
            inputs = self.test_inputs(pixels) / pixel_max(pixels)
            self._references[pixels] = reference_logits(self.deployable(), inputs)
        return self._references[pixels]

    def normalisation_error(self, pixels: str) -> float:
        """Largest logit difference between the deployable module on the pixels and the trained
        child on the normalised tensors it was trained on (the same images): PyTorch's check
        that the normalisation inside the files is the training pipeline's."""
        from search.data.splits import normalise

        pixels01 = self.test_inputs(pixels) / pixel_max(pixels)
        normalised = normalise(pixels01, self.data.mean, self.data.std).numpy()
        trained = reference_logits(self.child.module, normalised)
        return float(np.abs(self.reference(pixels) - trained).max())


def open_run(run_dir: Path) -> OpenRun:
    """The trained child and its dataset; DeployError (one line) when either is unusable."""
    run_dir = Path(run_dir)
    child = load_run_child(run_dir)
    metrics = read_json(run_dir / "metrics.json", "the search's metrics")
    data = run_dataset(metrics, int(child.space.resolution))  # type: ignore[arg-type]
    return OpenRun(run_dir, child, metrics, data)


def export_formats(
    job: ExportJob, formats: Sequence[str], paths: dict[str, Path], emit: Emit
) -> dict[str, str]:
    """Each format into its path (formats that others start from go first); returns the errors
    of formats that failed, while the others are still produced."""
    errors: dict[str, str] = {}
    for name in in_dependency_order(parse_formats(list(formats))):
        fmt = get_format(name)
        emit({"type": "export", "format": name, "state": "started"})
        try:
            fmt.export(job, paths[name])
        except ExportFailed as exc:
            errors[name] = str(exc)
            emit({"type": "export", "format": name, "state": "failed", "error": str(exc)})
            continue
        job.produced[name] = paths[name]
        emit({"type": "export", "format": name, "state": "done", "path": str(paths[name])})
    return errors


def in_dependency_order(names: list[str]) -> list[str]:
    """`names` in the registry's order, so a format comes after those whose files it needs."""
    from deploy.formats import format_names

    order = format_names()
    return sorted(names, key=order.index)


def export_job(
    run: OpenRun, *, nhwc: bool = False, dynamic_batch: bool = False, pixels: str = "float"
) -> ExportJob:
    """Files take pixels in [0, 1] (or 0..255 for `pixels="uint8"`), normalised inside. The
    module traced is on float pixels in that range: the normalisation's weights scale by it."""
    scaled = deployable_module(run.child.module, run.data.mean, run.data.std, pixels)
    return ExportJob(
        module=scaled,
        input_shape=tuple(run.child.space.input_shape[1:]),  # type: ignore[arg-type]
        calibration=file_pixels(run.data.calibration, pixels),
        out_dir=run.export_dir,
        nhwc=nhwc,
        dynamic_batch=dynamic_batch,
        pixels=pixels,
        network=run.child.module,
        mean=tuple(float(m) for m in run.data.mean),
        std=tuple(float(s) for s in run.data.std),
    )


def produced_files(run_dir: Path) -> dict[str, Path]:
    """The exported files on disk now, by format."""
    from deploy.formats import format_names

    export_dir = Path(run_dir) / EXPORT_DIR
    found = {}
    for name in format_names():
        path = export_dir / get_format(name).file_name
        if path.is_file():
            found[name] = path
    return found


def check_files(
    run: OpenRun,
    files: dict[str, Path],
    emit: Emit,
    *,
    force: bool = False,
    measure: bool = True,
    quick: bool = False,
) -> dict[str, dict[str, Any]]:
    """Verify and measure each file whose checks.json entry is missing or stale (or all of them
    with `force`); returns the entries of `files`. Entries of files no longer on disk go.
    Formats that are not model files (c-array's C source) are left out."""
    files = {name: file for name, file in files.items() if get_format(name).verifiable}
    path = run.export_dir / CHECKS_FILE
    checks = {k: v for k, v in read_json_or_empty(path).items() if k in produced_files(run.run_dir)}
    for name, file in files.items():
        entry = checks.get(name)
        if not force and fresh_entry(entry, file):
            continue
        previous = checks.get(name) or {}
        checks[name] = check_one(run, name, file, emit, measure=measure, quick=quick)
        if not measure and previous.get("sha256") == checks[name]["sha256"]:
            checks[name]["measurement"] = previous.get("measurement")  # same file, same timing
        write_json(path, checks)
    write_json(path, checks)
    return {name: checks[name] for name in files}


def check_one(
    run: OpenRun, name: str, file: Path, emit: Emit, *, measure: bool, quick: bool
) -> dict[str, Any]:
    fmt = get_format(name)
    recorded = read_inputs(run.export_dir).get(name) or {}
    pixels = str(recorded.get("pixels", "float"))
    inputs = run.test_inputs(pixels)
    emit({"type": "verify", "format": name})
    entry: dict[str, Any] = {
        "file": file.name,
        "sha256": file_digest(file),
        "bytes": file.stat().st_size,
        "dataset": run.data.name,
        "pixels": pixels,
        "verification": verify_file(
            file,
            inputs,
            run.data.test_labels,
            run.reference(pixels),
            int8=not fmt.exact,
            real_labels=run.real_labels,
            input_quantization=quantization_pair(recorded.get("pixel_quantization")),
        ),
    }
    if measure:
        emit({"type": "measure", "format": name, "runtime": fmt.runtime})
        example = inputs[:1]
        try:
            unit = lut_unit_for(fmt.runtime, run.metrics.get("lut_units") or {})
            entry["measurement"] = measure_exported(
                fmt.runtime, file, example, quick=quick, unit=unit
            )
        except (RuntimeError, OSError, ValueError) as exc:  # the file stays; its timing is missing
            entry["measurement_error"] = str(exc)
            emit({"type": "measure", "format": name, "error": str(exc)})
    return entry
