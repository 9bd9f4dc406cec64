"""LiteRT backend: each model converted with litert-torch into an NHWC `.tflite` file and timed by
the LiteRT timer (`profilers/timers/litert.py`) on the XNNPACK delegate, as a phone's or an ARM
board's CPU would run it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.quiet import silenced
from profilers.backends.converted import ConvertedModelBackend
from profilers.base import register_backend
from profilers.timers.litert import LiteRTFileTimer

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


@register_backend("litert")
class LiteRTBackend(ConvertedModelBackend):
    """Converted once per key (`<key>.tflite`); 4-D inputs and outputs are channel-last (NHWC),
    as LiteRT models are deployed; 2-D ones (pool and linear outputs, linear inputs) stay as
    they are."""

    timer_class = LiteRTFileTimer
    layout = "NHWC"
    suffix = ".tflite"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.precision != "fp32":
            raise ValueError(f"litert backend measures fp32 only, not {self.precision!r}")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        for package in ("ai_edge_litert", "litert_torch"):
            if importlib.util.find_spec(package) is None:
                return f"the Python package {package.replace('_', '-')!r} is not installed"
        return None

    def runtime_version(self) -> str:
        converter = importlib.metadata.version("litert-torch")
        return f"{self.timer.runtime_version()} (converted by litert-torch {converter})"

    def convert(self, module: nn.Module, example: torch.Tensor, path: Path) -> None:
        convert_channel_last(module, example, path)


def channel_last(tensor: torch.Tensor) -> torch.Tensor:
    """NCHW → NHWC for 4-D tensors; others unchanged (detached, contiguous, on the CPU)."""
    tensor = tensor.detach().cpu()
    return (tensor.permute(0, 2, 3, 1) if tensor.dim() == 4 else tensor).contiguous()


def convert_channel_last(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Convert `module` (NCHW) to a `.tflite` file whose 4-D input and 4-D output are NHWC."""
    import torch

    with silenced():
        import litert_torch  # its first import alone prints absl and oneDNN lines

        with torch.no_grad():
            output = module(example.clone())
        outputs = [0] if example.dim() == 4 and output.dim() == 4 else []
        wrapped = module
        if example.dim() == 4:
            wrapped = litert_torch.to_channel_last_io(module, args=[0], outputs=outputs)
        edge_model = litert_torch.convert(wrapped.eval(), (channel_last(example),))
        edge_model.export(str(path))
