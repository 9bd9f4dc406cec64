"""The measuring flow shared by backends that time a converted model file (ONNX, TFLite): convert
once into the cache, load it into the runtime, run it once while tracking memory, then time it."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lut.measurement import Measurement
from lut.opspec import OpSpec
from profilers.base import ProfilerBackend
from profilers.export import check_cache_key, check_eval_mode, ensure_cached, op_model
from profilers.memory import PeakMemory, track_peak_rss
from profilers.protocol import DriftReference, pinned_to_cores, time_runs, wall_timer

if TYPE_CHECKING:
    import numpy as np
    import torch
    import torch.nn as nn

# A runtime's first session in a process sets up process-wide state (allocators, thread pools,
# kernel registries) worth megabytes; loading this tiny model first keeps that out of the first
# measured op's peak memory.
WARMUP_SPEC = OpSpec(op="add", in_channels=8, out_channels=8, height=8, width=8)
# The drift reference: an inverted residual (~0.2 ms on one x86 core, a tiny network's time)
# made of the kernels most ops use, so a slowdown of the machine slows it like them. A smaller one
# (14×14, e3, ~50 µs) followed the drift worse: tiny networks' back-to-back sessions then still
# differed by 8-23%, against 1-5% with this one.
REFERENCE_SPEC = OpSpec(
    op="mbconv", in_channels=16, out_channels=16, height=28, width=28, kernel=5, expansion=6.0
)


class ConvertedModelBackend(ProfilerBackend):
    """Micro-models and whole networks go through the same path, so both are timed alike: the
    file is cached as `<key><suffix>` (OpSpec hash or the caller's `cache_key`), and one runtime
    session per measurement is created and timed with the protocol, pinned to `threads` CPUs."""

    suffix: ClassVar[str]
    supports_drift_reference = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conversions = 0  # model files converted by this instance (cache misses)
        self._runtime_warm = False
        self._reference_run: Callable[[], float] | None = None

    @abstractmethod
    def convert(self, module: nn.Module, example: torch.Tensor, path: Path) -> None:
        """Write the runtime's model of `module` (NCHW input like `example`) to `path`."""

    @abstractmethod
    def load(self, path: Path, example: torch.Tensor) -> Callable[[], object]:
        """Load `path` into the runtime with `example` as its input; return one inference call."""

    def memory_tracker(self) -> AbstractContextManager[PeakMemory]:
        return track_peak_rss()

    def model_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}{self.suffix}"

    def measure_op(self, spec: OpSpec) -> Measurement:
        module, example = op_model(spec)
        return self._measure(module, example, spec.key)

    def measure_module(
        self, module: nn.Module, example: torch.Tensor, *, cache_key: str
    ) -> Measurement:
        check_eval_mode(module)
        return self._measure(module, example, check_cache_key(cache_key))

    def convert_cached(self, module: nn.Module, example: torch.Tensor, *, cache_key: str) -> bool:
        """Convert `module` into the cache without timing it (True if it was not there yet)."""
        check_eval_mode(module)
        return self._model_file(module, example, check_cache_key(cache_key))[1]

    def _model_file(self, module: nn.Module, example: torch.Tensor, key: str) -> tuple[Path, bool]:
        path = self.model_path(key)
        converted = ensure_cached(path, lambda tmp: self.convert(module, example, tmp))
        self.conversions += converted
        return path, converted

    def _warm_up_runtime(self) -> None:
        if self._runtime_warm:
            return
        module, example = op_model(WARMUP_SPEC)
        path, _ = self._model_file(module, example, WARMUP_SPEC.key)
        self.load(path, example)()
        self._runtime_warm = True

    def _reference_timer(self) -> Callable[[], float]:
        """The reference model, loaded once per backend (inside the pinned block, so its
        runtime threads share the measured model's CPUs)."""
        if self._reference_run is None:
            module, example = op_model(REFERENCE_SPEC)
            path, _ = self._model_file(module, example, REFERENCE_SPEC.key)
            self._reference_run = wall_timer(self.load(path, example))
        return self._reference_run

    def drift_reference(self) -> DriftReference | None:
        """The reference to pair runs with, when the protocol asks for one and its nominal
        latency is known."""
        if not self.protocol.drift_reference or self.drift_reference_ms is None:
            return None
        return DriftReference(self._reference_timer(), self.drift_reference_ms)

    def measure_drift_reference(self) -> float:
        with pinned_to_cores(self.threads):
            self._warm_up_runtime()
            return time_runs(self._reference_timer(), self.protocol).median_ms

    def measure_file(self, path: Path, example: torch.Tensor) -> Measurement:
        """Time an existing model file (an exported network, int8 ones included) with the same
        protocol, pinning and memory tracking as converted micro-models. `example` is the NCHW
        float input; `load` fits it to the file's input (layout, int8/uint8 quantisation)."""
        path = Path(path)
        if path.suffix != self.suffix:
            raise ValueError(f"{self.name} times {self.suffix} files, not {path.name}")
        if not path.is_file():
            raise ValueError(f"model file {path} does not exist")
        return self._time_file(path, example, converted=False)

    def _measure(self, module: nn.Module, example: torch.Tensor, key: str) -> Measurement:
        path, converted = self._model_file(module, example, key)
        return self._time_file(path, example, converted=converted)

    def _time_file(self, path: Path, example: torch.Tensor, *, converted: bool) -> Measurement:
        with pinned_to_cores(self.threads) as cpus:
            self._warm_up_runtime()
            with self.memory_tracker() as memory:
                run_once = self.load(path, example)
                run_once()
            return time_runs(
                wall_timer(run_once),
                self.protocol,
                peak_memory_bytes=memory.bytes,
                extra=self.measurement_extra(cpus, memory, path, converted),
                reference=self.drift_reference(),
            )

    def measurement_extra(
        self, cpus: list[int] | None, memory: PeakMemory, path: Path, converted: bool
    ) -> dict[str, Any]:
        """What a measurement records of how it was taken."""
        return {
            "backend": self.name,
            "provider": self.provider(),
            "threads": self.threads,
            "cpus": cpus,
            "peak_memory_method": memory.method,
            "model_file": path.name,
            "converted": converted,
        }


def fit_input(
    example: torch.Tensor,
    shape: Sequence[int],
    dtype: Any,
    quantization: tuple[float, int] = (0.0, 0),
) -> np.ndarray:
    """`example` (NCHW float) as a runtime input of `shape` and numpy `dtype`: permuted to NHWC
    when the file takes channel-last input, and quantised (round(x / scale) + zero point,
    clipped) when it takes int8 / uint8 with a scale (a plain cast without one)."""
    import numpy as np

    array = example.detach().cpu().numpy()
    shape = [int(d) if isinstance(d, int | np.integer) else None for d in shape]
    if array.ndim == 4 and not _fits(shape, array.shape):
        channel_last = array.transpose(0, 2, 3, 1)
        if _fits(shape, channel_last.shape):
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
    return all(
        not isinstance(d, int) or d < 0 or d == a for d, a in zip(shape, actual, strict=True)
    )
