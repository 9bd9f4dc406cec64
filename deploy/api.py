"""What the CLI and the service call: export a search run into deployable files, re-run their
checks, write the model card, find a file by its download name, and record a measurement taken
on a real target into the card."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common.files import write_json_atomically, write_text_atomically
from deploy.checks import TARGETS_FILE, read_json_or_empty
from deploy.child import DeployError, load_run_child
from deploy.formats import format_names, get_format, parse_formats

CARD_FILES = ("card.json", "card.md")
# (job, formats, their paths, emit) -> errors by format: `deploy.run.export_formats`'s contract
Exporter = Callable[
    [Any, list[str], dict[str, Path], Callable[[dict[str, Any]], None]], dict[str, str]
]

__all__ = [
    "DeployError",
    "artifact_path",
    "export_run",
    "record_target_measurement",
    "verify_run",
    "write_card",
]


def export_run(
    run_dir: Path,
    formats: Sequence[str],
    *,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    nhwc: bool = False,
    dynamic_batch: bool = False,
    tensorrt_precision: str = "fp16",
    quick: bool = False,
    pixels: str = "float",
    exporter: Exporter | None = None,
) -> dict[str, Any]:
    """Export the trained child of a search run dir (arch.json + child.pt + metrics.json, as
    written by search/run.py) into run_dir/export/, verify each file against PyTorch, measure it
    on this machine, write run_dir/card.json + card.md. Returns {"files": {fmt: path},
    "errors": {fmt: message}, "card": card_dict}. A format that fails (TensorRT not installed,
    an op it cannot express) goes to "errors" and the others are still produced. Raises
    DeployError (one line) for a run dir without weights / weights that do not fit the
    architecture, or an unknown format. `nhwc`: TFLite files with channel-last input/output;
    `dynamic_batch`: ONNX files with a free batch dimension; `quick`: the looser timing
    protocol; `pixels`: what the files take, "float" ([0, 1]) or "uint8" (0..255) — the train
    split's normalisation is inside every file either way (deploy.contract). `exporter`
    produces the files (`deploy.run.export_formats`'s contract; the default is that function,
    in this process): the Ray executor passes one that converts each format as a task."""
    from deploy.card import ERRORS_FILE
    from deploy.contract import check_pixels, input_entry, record_inputs
    from deploy.run import check_files, export_formats, export_job, open_run

    emit = on_event or (lambda event: None)
    try:
        names = parse_formats(list(formats))
        check_pixels(pixels)
    except ValueError as exc:
        raise DeployError(str(exc)) from None
    run = open_run(Path(run_dir))
    job = export_job(run, nhwc=nhwc, dynamic_batch=dynamic_batch, pixels=pixels)
    job.tensorrt_precision = tensorrt_precision
    paths = {name: run.export_dir / get_format(name).file_name for name in names}
    errors = (exporter or export_formats)(job, names, paths, emit)
    _record_errors(run.export_dir / ERRORS_FILE, names, errors)
    files = {name: paths[name] for name in names if name not in errors}
    drift = run.normalisation_error(pixels)
    entries = {
        name: input_entry(name, pixels, run.data.mean, run.data.std, drift) for name in files
    }
    record_inputs(run.export_dir, entries)
    emit({"type": "state", "state": "verifying"})
    check_files(run, files, emit, force=True, quick=quick)
    card = write_card(run.run_dir, run=run, quick=quick)
    emit({"type": "done", "files": {k: str(v) for k, v in files.items()}, "errors": errors})
    return {"files": files, "errors": errors, "card": card}


def _record_errors(path: Path, attempted: list[str], errors: dict[str, str]) -> None:
    kept = {k: v for k, v in read_json_or_empty(path).items() if k not in attempted}
    write_json_atomically(path, {**kept, **errors})


def verify_run(
    run_dir: Path, *, on_event: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Re-run every numerical check of the exported files on the test split (timings of
    unchanged files are kept); rewrites the card. Returns {fmt: verification}."""
    from deploy.run import check_files, open_run, produced_files

    files = produced_files(Path(run_dir))
    if not files:
        raise DeployError(f"{run_dir} has no exported files: run `hwnas export --run {run_dir}`")
    run = open_run(Path(run_dir))
    checks = check_files(run, files, on_event or (lambda event: None), force=True, measure=False)
    write_card(run.run_dir, run=run)
    return {name: entry["verification"] for name, entry in checks.items()}


def write_card(
    run_dir: Path, *, run: Any = None, refresh: bool = True, quick: bool = False
) -> dict[str, Any]:
    """Build card.json and card.md from the files as they are now. With `refresh`, files whose
    checks are missing or stale (changed since checked) are verified and measured first."""
    from deploy.card import build_card, render_markdown
    from deploy.checks import CHECKS_FILE, fresh_entry
    from deploy.run import check_files, open_run, produced_files

    run_dir = Path(run_dir)
    files = produced_files(run_dir)
    checks = read_json_or_empty(run_dir / "export" / CHECKS_FILE)
    stale = {n: p for n, p in files.items() if not fresh_entry(checks.get(n), p)}
    if refresh and stale:
        run = run or open_run(run_dir)
        check_files(run, stale, lambda event: None, quick=quick)
    child = run.child if run is not None else load_run_child(run_dir)
    card = build_card(run_dir, child, files)
    write_json_atomically(run_dir / "card.json", card)
    write_text_atomically(run_dir / "card.md", render_markdown(card))
    return card


def artifact_path(run_dir: Path, name: str) -> Path:
    """The file for a download name: each registered format, "card.json", "card.md". Raises
    FileNotFoundError with a clear message if not produced."""
    run_dir = Path(run_dir)
    if name in CARD_FILES:
        path = run_dir / name
    elif name in format_names():
        path = run_dir / "export" / get_format(name).file_name
    else:
        valid = ", ".join((*format_names(), *CARD_FILES))
        raise FileNotFoundError(f"no artifact named {name!r}; valid: {valid}")
    if not path.is_file():
        errors = read_json_or_empty(run_dir / "export" / "errors.json")
        why = f": {errors[name]}" if name in errors else ""
        raise FileNotFoundError(f"{name} was not produced for {run_dir}{why}")
    return path


def record_target_measurement(
    run_dir: Path,
    device: str,
    fmt: str,
    measurement: dict[str, Any],
    *,
    taken_by: dict[str, Any] | None = None,
) -> None:
    """Store an end-to-end measurement of an exported file taken on a real target (by a profiler
    agent; `measurement` is lut.measurement.Measurement's JSON form, plus "backend") and rewrite
    card.json / card.md so the card shows measured-on-target next to LUT-predicted latency for
    that device, and who took it (`taken_by`: the agent and device LUT, as JSON scalars). Bad
    input raises DeployError (a ValueError) with one line; a format that was not produced for
    this run raises FileNotFoundError, as `artifact_path` does."""
    from lut.measurement import Measurement

    run_dir = Path(run_dir)
    if fmt not in format_names():
        raise DeployError(f"unknown format {fmt!r}; valid: {', '.join(format_names())}")
    if not isinstance(device, str) or not device.strip() or len(device) > 200:
        raise DeployError("device must be a non-empty name of at most 200 characters")
    if not isinstance(measurement, dict):
        raise DeployError("measurement must be a JSON object")
    try:
        parsed = Measurement.from_dict(measurement)
    except (ValueError, TypeError) as exc:
        raise DeployError(f"invalid measurement: {exc}") from None
    artifact_path(run_dir, fmt)  # only files that exist can have been measured
    stored = parsed.to_dict()
    stored["runtime"] = measurement.get("backend") or parsed.extra.get("backend")
    if taken_by is not None:
        if not isinstance(taken_by, dict):
            raise DeployError("taken_by must be a JSON object (agent, device, ...)")
        stored["taken_by"] = taken_by
    path = run_dir / "export" / TARGETS_FILE
    targets = read_json_or_empty(path)
    targets.setdefault(device, {})[fmt] = stored
    write_json_atomically(path, targets)
    write_card(run_dir, refresh=False)
