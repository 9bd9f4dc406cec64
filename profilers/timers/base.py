"""Timing one model file (ONNX, TFLite) in its runtime, the same way for a LUT micro-model, a
fixed-cost probe and a whole exported network: pinned to `threads` CPUs, the runtime warmed up
once on a tiny model, the file loaded and run once while peak memory is tracked, then timed with
`profilers.protocol` (paired with the drift reference when the LUT has one). Needs numpy and the
runtime only: a thin agent runs this, and the converting backends delegate to it."""

from __future__ import annotations

import os
import platform
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lut.measurement import Measurement
from profilers.base import PROFILER_VERSION, cpu_model
from profilers.memory import PeakMemory, track_peak_rss
from profilers.protocol import (
    DriftReference,
    MeasureProtocol,
    pinned_to_cores,
    time_runs,
    wall_timer,
)

if TYPE_CHECKING:
    import numpy as np

# The two support models every timing needs: a tiny one that warms a runtime up (its first
# session sets up process-wide state worth megabytes, kept out of the first op's peak memory),
# and the drift reference. `SupportFiles` gives the file of each by role.
WARMUP, REFERENCE = "warmup", "reference"
SupportFiles = Callable[[str], Path]


class FileTimer(ABC):
    """One runtime's way to load a model file and run it once; the timing flow is shared."""

    name: ClassVar[str]  # the runtime, as the profiler backends name it
    suffix: ClassVar[str]  # the files it times
    layout: ClassVar[str] = "NCHW"  # the 4-D layout of its micro-models' input and output

    def __init__(
        self,
        *,
        threads: int = 1,
        protocol: MeasureProtocol | None = None,
        device: str = "cpu",
        support_files: SupportFiles | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        self.protocol = protocol or MeasureProtocol()
        self.device = device
        self.support_files = support_files
        # The reference's nominal latency: the unit of the LUT measured into (None: plain ms).
        self.drift_reference_ms: float | None = None
        self._runtime_warm = False
        self._reference: tuple[Path, Callable[[], float]] | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None if the runtime can run here, else one line saying why not."""
        return None

    @abstractmethod
    def runtime_version(self) -> str: ...

    @abstractmethod
    def provider(self) -> str:
        """Execution provider / delegate, e.g. CPUExecutionProvider, XNNPACK."""

    @abstractmethod
    def load(self, path: Path, example: Any = None) -> Callable[[], object]:
        """Load `path` with `example` (NCHW or the file's layout; None: random, in the file's
        declared shape) as its input; return one inference call."""

    def memory_tracker(self) -> AbstractContextManager[PeakMemory]:
        return track_peak_rss()

    def use_drift_reference(self, nominal_ms: float | None) -> None:
        """Measure from now on in the unit of a LUT whose reference took `nominal_ms`."""
        self.protocol = replace(self.protocol, drift_reference=nominal_ms is not None)
        self.drift_reference_ms = nominal_ms

    def fingerprint(self) -> dict[str, Any]:
        """What makes timings comparable: host, runtime, provider, threads (the converter of the
        files is the server's; it adds its version when the agent registers)."""
        return {
            "backend": self.name,
            "runtime_version": self.runtime_version(),
            "provider": self.provider(),
            "threads": self.threads,
            "precision": "fp32",
            "cpu_model": cpu_model(),
            "cpu_cores": os.cpu_count() or 0,
            "machine": platform.machine(),
            "system": platform.system(),
            "accelerator": None,
            "profiler_version": PROFILER_VERSION,
        }

    # -- timing ------------------------------------------------------------------------------
    def measure_file(self, path: Path, example: Any = None) -> Measurement:
        """Time an existing model file (an exported network, int8 ones included)."""
        path = Path(path)
        if path.suffix != self.suffix:
            raise ValueError(f"{self.name} times {self.suffix} files, not {path.name}")
        if not path.is_file():
            raise ValueError(f"model file {path} does not exist")
        return self.time_file(path, example, extra={"converted": False})

    def measure_op_file(
        self, path: Path, example: Any = None, *, extra: dict[str, Any] | None = None
    ) -> Measurement:
        """The LUT entry of an op's micro-model file (a runtime may time ops differently from
        whole networks: see the ONNX Runtime timer)."""
        return self.time_file(path, example, extra=extra)

    def time_file(
        self, path: Path, example: Any = None, *, extra: dict[str, Any] | None = None
    ) -> Measurement:
        """Whole timed runs of `path` under the protocol; `extra` is recorded beside them."""
        with pinned_to_cores(self.threads) as cpus:
            self.warm_up_runtime()
            with self.memory_tracker() as memory:
                run_once = self.load(path, example)
                run_once()
            return time_runs(
                wall_timer(run_once),
                self.protocol,
                peak_memory_bytes=memory.bytes,
                extra={**self.measurement_extra(cpus, memory, path), **(extra or {})},
                reference=self.drift_reference(),
            )

    def measure_drift_reference(self) -> float:
        """Time the reference model alone; its median becomes a new LUT's nominal latency."""
        with pinned_to_cores(self.threads):
            self.warm_up_runtime()
            return time_runs(self._reference_timer(), self.protocol).median_ms

    def drift_reference(self) -> DriftReference | None:
        """The reference to pair runs with, when the protocol asks for one and its nominal
        latency is known."""
        if not self.protocol.drift_reference or self.drift_reference_ms is None:
            return None
        return DriftReference(self._reference_timer(), self.drift_reference_ms)

    def warm_up_runtime(self) -> None:
        if self._runtime_warm or self.support_files is None:
            return
        self.load(self.support_files(WARMUP))()
        self._runtime_warm = True

    def _reference_timer(self) -> Callable[[], float]:
        """The reference model, loaded once per file (inside the pinned block, so its runtime
        threads share the measured model's CPUs)."""
        if self.support_files is None:
            raise ValueError(f"the {self.name} timer has no drift reference model")
        path = self.support_files(REFERENCE)
        if self._reference is None or self._reference[0] != path:
            self._reference = (path, wall_timer(self.load(path)))
        return self._reference[1]

    def measurement_extra(
        self, cpus: list[int] | None, memory: PeakMemory, path: Path
    ) -> dict[str, Any]:
        """What a measurement records of how it was taken."""
        return {
            "backend": self.name,
            "provider": self.provider(),
            "threads": self.threads,
            "cpus": cpus,
            "peak_memory_method": memory.method,
            "model_file": path.name,
        }


def example_array(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """A fixed float32 input of `shape` (standard normal, seeded): timings do not depend on the
    values, and every machine then feeds the same ones."""
    import numpy as np

    return np.random.default_rng(seed).standard_normal(tuple(shape), dtype=np.float32)


def fit_input(
    example: Any,
    shape: Sequence[Any],
    dtype: Any,
    quantization: tuple[float, int] = (0.0, 0),
) -> np.ndarray:
    """`example` (NCHW float: a numpy array or a torch tensor; None: `example_array` of the
    declared shape, dynamic dimensions as 1) as a runtime input of `shape` and numpy `dtype`:
    permuted to NHWC when the file takes channel-last input, and quantised (round(x / scale) +
    zero point, clipped) when it takes int8 / uint8 with a scale (a plain cast without one)."""
    import numpy as np

    dims = [int(d) if isinstance(d, int | np.integer) else None for d in shape]
    if example is None:
        array = example_array([d if d is not None and d > 0 else 1 for d in dims])
    elif hasattr(example, "detach"):  # a torch tensor
        array = example.detach().cpu().numpy()
    else:
        array = np.asarray(example)
    if array.ndim == 4 and not _fits(dims, array.shape):
        channel_last = array.transpose(0, 2, 3, 1)
        if _fits(dims, channel_last.shape):
            array = channel_last
    array = np.ascontiguousarray(array)
    target = np.dtype(dtype)
    if target.kind not in "iu":
        return array.astype(target)
    scale, zero_point = quantization
    if scale:
        array = np.round(array / scale) + zero_point
    info = np.iinfo(target)
    return np.clip(np.round(array), info.min, info.max).astype(target)


def _fits(shape: Sequence[int | None], actual: tuple[int, ...]) -> bool:
    """Whether `actual` fits a declared shape whose dynamic dimensions are names or None."""
    if len(shape) != len(actual):
        return False
    return all(d is None or d < 0 or d == a for d, a in zip(shape, actual, strict=True))
