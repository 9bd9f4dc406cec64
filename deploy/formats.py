"""The exporter registry: one function per deployable format, registered by name with the file it
writes. Each exporter gets the same `ExportJob` and writes one file, or raises `ExportFailed`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch.nn as nn


class ExportFailed(RuntimeError):
    """One format could not be produced; the message is one line naming the format."""


@dataclass
class ExportJob:
    """What every exporter needs: the eval-mode module on float pixels (normalisation inside,
    `deploy.contract.deployable_module`), its input shape (C, H, W), calibration images (NCHW
    float32 in the pixels' range: [0, 1], or 0..255 for `pixels="uint8"`) and where the files
    go. `produced` maps formats already written to their files, so int8 ONNX and TensorRT can
    start from the fp32 ONNX file."""

    module: nn.Module
    input_shape: tuple[int, int, int]
    calibration: np.ndarray
    out_dir: Path
    nhwc: bool = False  # TFLite files with channel-last input and output
    dynamic_batch: bool = False  # ONNX files with a free batch dimension
    tensorrt_precision: str = "fp16"
    pixels: str = "float"  # what the files take: "float" [0, 1] or "uint8" 0..255
    produced: dict[str, Path] = field(default_factory=dict)
    # The trained network without the normalisation in front, and that normalisation (on [0, 1]
    # pixels): full-integer files fold it into their input's quantisation where they can.
    network: nn.Module | None = None
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def example(self, batch: int = 1) -> Any:
        """The first calibration images as the fp32 files take them (uint8 for uint8 pixels)."""
        import torch

        tensor = self.float_example(batch)
        return tensor.to(torch.uint8) if self.pixels == "uint8" else tensor

    def float_example(self, batch: int = 1) -> Any:
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.calibration[:batch]))

    def graph_module(self) -> nn.Module:
        """The module the fp32 exporters trace: it casts uint8 input to float first."""
        from deploy.contract import graph_module

        return graph_module(self.module, self.pixels)

    def folded_input(self) -> tuple[nn.Module, np.ndarray, tuple[float, float]] | None:
        """For a full-integer file that takes the normalisation into its input's quantisation
        (`deploy.contract.folds_normalisation`): the network without it, the calibration images
        normalised, and the normalised values of the darkest and brightest pixel. None when the
        job has no separate network or the channels' statistics differ."""
        from deploy.contract import folds_normalisation, pixel_max

        if self.network is None or not self.mean or not folds_normalisation(self.mean, self.std):
            return None
        mean, std, top = float(self.mean[0]), float(self.std[0]), pixel_max(self.pixels)
        normalised = ((self.calibration / top - mean) / std).astype(np.float32)
        return self.network, normalised, (-mean / std, (1.0 - mean) / std)

    def calibration_input(self, index: int) -> np.ndarray:
        """Calibration image `index` (batch 1) in the fp32 ONNX file's input dtype."""
        image = self.calibration[index : index + 1]
        return image.astype(np.uint8) if self.pixels == "uint8" else image


@dataclass(frozen=True)
class Format:
    name: str
    file_name: str
    runtime: str  # the profiler backend that times it on this machine ("" if none here)
    int8: bool
    export: Callable[[ExportJob, Path], None]
    needs: tuple[str, ...] = ()  # formats whose files it starts from
    exact: bool = True  # fp32: logits must match PyTorch; else only the accuracy may drop
    verifiable: bool = True  # a model file a runtime here loads (c-array is C source)


_REGISTRY: dict[str, Format] = {}


def register_format(
    name: str,
    file_name: str,
    *,
    runtime: str,
    int8: bool = False,
    needs: tuple[str, ...] = (),
    exact: bool | None = None,
    verifiable: bool = True,
) -> Callable[[Callable[[ExportJob, Path], None]], Callable[[ExportJob, Path], None]]:
    def decorator(export: Callable[[ExportJob, Path], None]) -> Callable[[ExportJob, Path], None]:
        if name in _REGISTRY:
            raise ValueError(f"export format {name!r} is registered twice")
        is_exact = not int8 if exact is None else exact
        _REGISTRY[name] = Format(
            name, file_name, runtime, int8, export, needs, is_exact, verifiable
        )
        return export

    return decorator


def get_format(name: str) -> Format:
    _load_exporters()
    if name not in _REGISTRY:
        raise ValueError(f"unknown export format {name!r}; valid: {', '.join(format_names())}")
    return _REGISTRY[name]


def format_names() -> list[str]:
    _load_exporters()
    return list(_REGISTRY)


def parse_formats(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """'onnx,tflite' or a list → validated names in the order given, without repeats."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [item.strip() for item in items if item.strip()]
    if not names:
        raise ValueError(f"no export format given; valid: {', '.join(format_names())}")
    for name in names:
        get_format(name)
    return list(dict.fromkeys(names))


_OP_PATTERNS = (  # how converters name an op: torch.ops.aten.x.default, op='aten.x', aten::x
    re.compile(r"torch\.ops\.(\w+\.\w+\.\w+)"),
    re.compile(r"op='(\w+\.\w+)', overload='(\w+)'"),
    re.compile(r"\b((?:aten|prims)(?:\.|::)\w+(?:\.\w+)?)"),
)


def unsupported_op_message(fmt: str, exc: BaseException) -> str:
    """One line naming the op the format cannot express, if the converter's error (or an error
    it was raised from) names one."""
    text = "\n".join(str(error) for error in _error_chain(exc))
    for pattern in _OP_PATTERNS:
        found = pattern.search(text)
        if found:
            return f"{fmt}: the format cannot express the op {'.'.join(found.groups())}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{fmt}: conversion failed: {lines[0] if lines else type(exc).__name__}"


def _error_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _load_exporters() -> None:
    from deploy import c_array, exporters  # noqa: F401  (register the built-in formats)
