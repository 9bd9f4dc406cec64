"""The measuring flow shared by backends that time a converted model file (ONNX, TFLite): convert
once into the cache, load it into the runtime, run it once while tracking memory, then time it."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lut.measurement import Measurement
from lut.opspec import OpSpec
from profilers.base import ProfilerBackend
from profilers.export import check_cache_key, check_eval_mode, ensure_cached, op_model
from profilers.memory import PeakMemory, track_peak_rss
from profilers.protocol import pinned_to_cores, time_runs, wall_timer

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

# A runtime's first session in a process sets up process-wide state (allocators, thread pools,
# kernel registries) worth megabytes; loading this tiny model first keeps that out of the first
# measured op's peak memory.
WARMUP_SPEC = OpSpec(op="add", in_channels=8, out_channels=8, height=8, width=8)


class ConvertedModelBackend(ProfilerBackend):
    """Micro-models and whole networks go through the same path, so both are timed alike: the
    file is cached as `<key><suffix>` (OpSpec hash or the caller's `cache_key`), and one runtime
    session per measurement is created and timed with the protocol, pinned to `threads` CPUs."""

    suffix: ClassVar[str]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conversions = 0  # model files converted by this instance (cache misses)
        self._runtime_warm = False

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

    def _measure(self, module: nn.Module, example: torch.Tensor, key: str) -> Measurement:
        path, converted = self._model_file(module, example, key)
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
