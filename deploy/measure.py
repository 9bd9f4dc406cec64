"""End-to-end latency and memory of exported files on this machine, in each file's runtime, with
the profilers' protocol (warm-up, repeats to a confidence target, one pinned thread).

Each file is measured in a fresh Python process: peak memory is the growth of the process's
resident set while loading and running the file once, and memory that earlier work in the same
process freed would otherwise be reused and go uncounted.

Where the search's device LUT was timed on this host in the file's runtime with a drift
reference, the file is timed in that LUT's unit (`LutUnit`): each run paired with the reference
model and scaled by its nominal latency, so the card's measured figure compares with the LUT's
prediction rather than with the host's speed of the moment."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lut.measurement import Measurement

MEMORY_METHOD = "peak RSS growth of a fresh process loading and running the file once"
TIMEOUT_S = 600


@dataclass(frozen=True)
class LutUnit:
    """The unit of a device LUT timed on this host: its threads and, with a drift reference,
    the reference's nominal latency."""

    device: str
    threads: int
    reference_ms: float | None


def lut_unit_for(runtime: str, units: dict[str, dict[str, Any]]) -> LutUnit | None:
    """The first of the search's devices (metrics.json `lut_units`) whose LUT was timed in
    `runtime` on this host's CPU; None if there is none (the file is then timed plainly)."""
    from profilers.base import cpu_model

    here = cpu_model()
    for name, unit in units.items():
        if unit.get("backend") == runtime and unit.get("cpu_model") == here:
            return LutUnit(name, int(unit.get("threads") or 1), unit.get("reference_ms"))
    return None


def measure_exported(
    runtime: str,
    path: Path,
    example: np.ndarray,
    *,
    quick: bool = False,
    unit: LutUnit | None = None,
) -> dict[str, Any]:
    """The file's Measurement as JSON (samples kept) plus `runtime`, the memory method and, when
    timed in a LUT's unit, `lut_unit` (its device and reference)."""
    if runtime == "tensorrt":
        data = _measure_engine(path).to_dict()
    else:
        data = _measure_in_subprocess(runtime, path, example, quick, unit)
    data["runtime"] = runtime
    data["memory_method"] = MEMORY_METHOD if runtime != "tensorrt" else "not measured"
    if unit is not None and runtime != "tensorrt":
        data["lut_unit"] = asdict(unit)
    return data


def _measure_in_subprocess(
    runtime: str, path: Path, example: np.ndarray, quick: bool, unit: LutUnit | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        example_path = Path(scratch) / "example.npy"
        np.save(example_path, np.ascontiguousarray(example, dtype=np.float32))
        command = [sys.executable, "-m", "deploy.measure", runtime, str(path), str(example_path)]
        if quick:
            command.append("--quick")
        if unit is not None:
            command += ["--threads", str(unit.threads)]
            if unit.reference_ms is not None:
                command += ["--reference-ms", repr(unit.reference_ms)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"measuring {path.name} in {runtime} failed: {tail}")
    return dict(json.loads(lines[-1]))


def measure_here(
    runtime: str,
    path: Path,
    example: np.ndarray,
    quick: bool,
    *,
    threads: int = 1,
    reference_ms: float | None = None,
) -> Measurement:
    """In this process: the profiler backend's `measure_file`, runtime version recorded; paired
    with the drift reference when its nominal latency is given."""
    import torch

    from profilers.base import create_backend
    from profilers.protocol import QUICK, MeasureProtocol

    backend: Any = create_backend(
        runtime,
        threads=threads,
        cache_dir=_model_cache(),
        protocol=QUICK if quick else MeasureProtocol(),
    )
    backend.use_drift_reference(reference_ms)
    measured = backend.measure_file(path, torch.from_numpy(example))
    extra = {**measured.extra, "runtime_version": backend.runtime_version()}
    return Measurement.from_samples(
        measured.samples_ms,
        warmup=measured.warmup,
        peak_memory_bytes=measured.peak_memory_bytes,
        extra=extra,
    )


def _model_cache() -> Path:
    """The profilers' cache of converted models (the backend's warm-up model lives there)."""
    from common.paths import model_cache_dir

    return model_cache_dir()


def _measure_engine(path: Path) -> Measurement:
    from deploy.tensorrt import EngineRunner

    runner = EngineRunner(path)
    return Measurement.from_samples(
        runner.time_ms(), warmup=20, extra={"backend": "tensorrt", "timer": "cuda-events"}
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.measure")
    parser.add_argument("runtime")
    parser.add_argument("path", type=Path)
    parser.add_argument("example", type=Path, help=".npy of one NCHW float input")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reference-ms", type=float, help="drift reference's nominal latency")
    args = parser.parse_args(argv)
    measured = measure_here(
        args.runtime,
        args.path,
        np.load(args.example),
        args.quick,
        threads=args.threads,
        reference_ms=args.reference_ms,
    )
    sys.stdout.write(json.dumps(measured.to_dict()) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
