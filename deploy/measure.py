"""End-to-end latency and memory of exported files on this machine, in each file's runtime, with
the profilers' protocol (warm-up, repeats to a confidence target, one pinned thread).

Each file is measured in a fresh Python process: peak memory is the growth of the process's
resident set while loading and running the file once, and memory that earlier work in the same
process freed would otherwise be reused and go uncounted."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lut.measurement import Measurement

MEMORY_METHOD = "peak RSS growth of a fresh process loading and running the file once"
TIMEOUT_S = 600


def measure_exported(
    runtime: str, path: Path, example: np.ndarray, *, quick: bool = False
) -> dict[str, Any]:
    """The file's Measurement as JSON (samples kept) plus `runtime` and the memory method."""
    if runtime == "tensorrt":
        data = _measure_engine(path).to_dict()
    else:
        data = _measure_in_subprocess(runtime, path, example, quick)
    data["runtime"] = runtime
    data["memory_method"] = MEMORY_METHOD if runtime != "tensorrt" else "not measured"
    return data


def _measure_in_subprocess(
    runtime: str, path: Path, example: np.ndarray, quick: bool
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        example_path = Path(scratch) / "example.npy"
        np.save(example_path, np.ascontiguousarray(example, dtype=np.float32))
        command = [sys.executable, "-m", "deploy.measure", runtime, str(path), str(example_path)]
        done = subprocess.run(
            [*command, "--quick"] if quick else command,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"measuring {path.name} in {runtime} failed: {tail}")
    return dict(json.loads(lines[-1]))


def measure_here(runtime: str, path: Path, example: np.ndarray, quick: bool) -> Measurement:
    """In this process: the profiler backend's `measure_file`, runtime version recorded."""
    import torch

    from profilers.base import create_backend
    from profilers.protocol import QUICK, MeasureProtocol

    backend: Any = create_backend(
        runtime, cache_dir=_model_cache(), protocol=QUICK if quick else MeasureProtocol()
    )
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
    import os

    from platformdirs import user_data_dir

    home = os.environ.get("HWNAS_HOME") or user_data_dir("hwnas", appauthor=False)
    return Path(home).expanduser() / "cache"


def _measure_engine(path: Path) -> Measurement:
    from deploy.tensorrt import EngineRunner

    runner = EngineRunner(path)
    return Measurement.from_samples(
        runner.time_ms(), warmup=20, extra={"backend": "tensorrt", "timer": "cuda-events"}
    )


def main(argv: list[str]) -> int:
    runtime, path, example_path = argv[:3]
    example = np.load(example_path)
    measured = measure_here(runtime, Path(path), example, quick="--quick" in argv[3:])
    sys.stdout.write(json.dumps(measured.to_dict()) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
