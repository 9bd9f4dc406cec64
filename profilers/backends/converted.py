"""The backends that time a converted model file (ONNX, TFLite): convert once into the cache with
torch, then time the file with the runtime's `profilers.timers` timer — the same code a thin agent
times the server's converted files with."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lut.measurement import Measurement
from lut.opspec import OpSpec
from profilers.base import ProfilerBackend
from profilers.export import check_cache_key, check_eval_mode, ensure_cached, op_model
from profilers.protocol import MeasureProtocol
from profilers.timers.base import REFERENCE, WARMUP, FileTimer, fit_input

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

# The runtime's warm-up model: loading it first keeps a runtime's process-wide set-up (allocators,
# thread pools, kernel registries) out of the first measured op's peak memory.
WARMUP_SPEC = OpSpec(op="add", in_channels=8, out_channels=8, height=8, width=8)
# The drift reference: an inverted residual (~0.2 ms on one x86 core, a tiny network's time)
# made of the kernels most ops use, so a slowdown of the machine slows it like them. A smaller one
# (14×14, e3, ~50 µs) followed the drift worse: tiny networks' back-to-back sessions then still
# differed by 8-23%, against 1-5% with this one.
REFERENCE_SPEC = OpSpec(
    op="mbconv", in_channels=16, out_channels=16, height=28, width=28, kernel=5, expansion=6.0
)
SUPPORT_SPECS = {WARMUP: WARMUP_SPEC, REFERENCE: REFERENCE_SPEC}

__all__ = ["SUPPORT_SPECS", "ConvertedModelBackend", "fit_input"]


class ConvertedModelBackend(ProfilerBackend):
    """Micro-models and whole networks go through the same path, so both are timed alike: the
    file is cached as `<key><suffix>` (OpSpec hash or the caller's `cache_key`) and timed by
    `self.timer`, which holds the protocol and the drift reference's unit."""

    timer_class: ClassVar[type[FileTimer]]
    suffix: ClassVar[str]  # the timer's
    supports_drift_reference = True

    def __init__(self, **kwargs: Any) -> None:
        self.timer = self.timer_class(
            threads=kwargs.get("threads", 1),
            device=kwargs.get("device") or self.default_device,
            support_files=self.support_file,
        )
        super().__init__(**kwargs)
        self.conversions = 0  # model files converted by this instance (cache misses)

    # The protocol and the reference's unit live in the timer (one state, not two to keep equal).
    @property  # type: ignore[override]
    def protocol(self) -> MeasureProtocol:
        return self.timer.protocol

    @protocol.setter
    def protocol(self, value: MeasureProtocol) -> None:
        self.timer.protocol = value

    @property  # type: ignore[override]
    def drift_reference_ms(self) -> float | None:
        return self.timer.drift_reference_ms

    @drift_reference_ms.setter
    def drift_reference_ms(self, value: float | None) -> None:
        self.timer.drift_reference_ms = value

    def provider(self) -> str:
        return self.timer.provider()

    @abstractmethod
    def convert(self, module: nn.Module, example: torch.Tensor, path: Path) -> None:
        """Write the runtime's model of `module` (NCHW input like `example`) to `path`."""

    def model_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}{self.suffix}"

    def support_file(self, role: str) -> Path:
        """The warm-up or drift-reference model's file, converted on first use."""
        spec = SUPPORT_SPECS[role]
        return self._model_file(*op_model(spec), spec.key)[0]

    def load(self, path: Path, example: Any = None) -> Any:
        """Load `path` into the runtime; one inference call (see FileTimer.load)."""
        return self.timer.load(path, example)

    def measure_op(self, spec: OpSpec) -> Measurement:
        module, example = op_model(spec)
        path, converted = self._model_file(module, example, spec.key)
        return self.timer.measure_op_file(path, example, extra={"converted": converted})

    def measure_module(
        self, module: nn.Module, example: torch.Tensor, *, cache_key: str
    ) -> Measurement:
        check_eval_mode(module)
        path, converted = self._model_file(module, example, check_cache_key(cache_key))
        return self.timer.time_file(path, example, extra={"converted": converted})

    def measure_file(self, path: Path, example: Any = None) -> Measurement:
        """Time an existing model file (an exported network, int8 ones included) with the same
        protocol, pinning and memory tracking as converted micro-models. `example` is the NCHW
        float input; the timer fits it to the file's input (layout, int8/uint8 quantisation)."""
        return self.timer.measure_file(path, example)

    def measure_drift_reference(self) -> float:
        return self.timer.measure_drift_reference()

    def convert_cached(self, module: nn.Module, example: torch.Tensor, *, cache_key: str) -> bool:
        """Convert `module` into the cache without timing it (True if it was not there yet)."""
        check_eval_mode(module)
        return self._model_file(module, example, check_cache_key(cache_key))[1]

    def _model_file(self, module: nn.Module, example: torch.Tensor, key: str) -> tuple[Path, bool]:
        path = self.model_path(key)
        converted = ensure_cached(path, lambda tmp: self.convert(module, example, tmp))
        self.conversions += converted
        return path, converted
