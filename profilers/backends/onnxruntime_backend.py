"""ONNX Runtime backend: each model exported to ONNX with torch and timed by the ONNX Runtime timer
(`profilers/timers/ort.py`): `InferenceSession.run` on the CPU execution provider, or the CUDA
one with device="cuda"."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from profilers.backends.converted import ConvertedModelBackend
from profilers.base import BackendUnavailable, register_backend
from profilers.export import export_onnx
from profilers.timers.ort import OrtFileTimer, OrtUnavailable

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


@register_backend("onnxruntime")
class OnnxRuntimeBackend(ConvertedModelBackend):
    """Exported once per key (`<key>.onnx`) with torch's TorchScript exporter
    (`profilers.export.export_onnx`); timed as `OrtFileTimer` says (ops of at least 0.1 ms by
    their kernel times)."""

    timer_class = OrtFileTimer
    suffix = ".onnx"

    def __init__(self, **kwargs: Any) -> None:
        try:
            super().__init__(**kwargs)
        except OrtUnavailable as exc:
            raise BackendUnavailable(str(exc)) from None
        if self.precision != "fp32":
            raise ValueError(f"onnxruntime backend measures fp32 only, not {self.precision!r}")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        for package in ("onnxruntime", "onnxscript"):
            if importlib.util.find_spec(package) is None:
                return f"the Python package {package!r} is not installed"
        return None

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def runtime_version(self) -> str:
        import torch

        return f"{self.timer.runtime_version()} (ONNX from torch {torch.__version__})"

    def convert(self, module: nn.Module, example: torch.Tensor, path: Path) -> None:
        export_onnx(module, example, path)

    def profile_blocks(
        self, module: nn.Module, example: torch.Tensor, key: str
    ) -> list[dict[int, float]]:
        """Time a whole network (an `nn.Sequential` of blocks) with ORT's profiler: per timed
        run, each block's kernel time in ms (`OrtFileTimer.profile_blocks_file`). CPU only."""
        if self.is_cuda:
            raise ValueError("per-block kernel times need ORT's CPU profiler, not CUDA")
        path, _ = self._model_file(module, example, key)
        timer: OrtFileTimer = self.timer  # type: ignore[assignment]
        return timer.profile_blocks_file(path, example)
