"""TensorRT backend: each model exported to ONNX, built into an engine with TensorRT's Python API
(fp32, fp16 or int8 kernels) and timed with CUDA events around `execute_async_v3`.

Written against TensorRT 10 (fp16/int8 use its weak-typing builder flags, which TensorRT 11
removed; fp32 works on both). PyPI's `tensorrt` wheels are stubs that fetch the real package from
NVIDIA's index, so on machines without it the backend reports itself unavailable.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lut.measurement import Measurement
from profilers.backends.module_timing import ModuleTimingBackend
from profilers.base import register_backend
from profilers.export import (
    ensure_cached,
    export_onnx,
)
from profilers.protocol import pinned_to_cores, time_runs

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

PRECISIONS = ("fp32", "fp16", "int8")
# int8 without calibration data: every tensor gets this symmetric range. The engine then runs
# int8 kernels (the latency is right) but its outputs are not meaningful; deploy/ calibrates.
_INT8_LATENCY_RANGE = 4.0
MEMORY_METHOD = "tensorrt-engine-bytes+device-memory+io"


@register_backend("tensorrt")
class TensorRTBackend(ModuleTimingBackend):
    """ONNX files are cached as `<key>.onnx`, serialized engines as
    `<key>.<precision>.<trt version>.<gpu>.engine` (engines are specific to both)."""

    default_device = "cuda"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"tensorrt precision must be one of {PRECISIONS}, not {self.precision!r}"
            )
        if not self.device.startswith("cuda"):
            raise ValueError(f"tensorrt backend needs device='cuda[:N]', not {self.device!r}")
        import tensorrt as trt

        flag = {"fp16": "FP16", "int8": "INT8"}.get(self.precision)
        if flag and not hasattr(trt.BuilderFlag, flag):  # TensorRT 11 dropped weak typing
            raise ValueError(
                f"TensorRT {trt.__version__} has no BuilderFlag.{flag}: {self.precision} needs "
                "an explicitly typed / Q/DQ-quantised ONNX model, which this backend does not make"
            )
        self._trt = trt
        self._logger = trt.Logger(trt.Logger.ERROR)
        self.conversions = 0  # engines built by this instance (cache misses)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("tensorrt") is None:
            return (
                "TensorRT is not installed: PyPI's 'tensorrt' wheels only download it from "
                "NVIDIA's index (pypi.nvidia.com); install it from NVIDIA on a machine with "
                "an NVIDIA GPU"
            )
        try:
            import tensorrt as trt
        except Exception as exc:  # a broken or stub install fails in many ways
            return f"TensorRT cannot be imported: {exc}"
        if not hasattr(trt, "Builder"):
            return "the installed 'tensorrt' package is a stub without TensorRT's Python API"
        import torch

        if not torch.cuda.is_available():
            return "TensorRT needs an NVIDIA GPU and torch sees no CUDA device"
        return None

    def runtime_version(self) -> str:
        return str(self._trt.__version__)

    def provider(self) -> str:
        return "tensorrt"

    def engine_path(self, key: str) -> Path:
        import torch

        gpu = re.sub(r"[^A-Za-z0-9]+", "-", torch.cuda.get_device_name(self.device)).strip("-")
        return self.cache_dir / f"{key}.{self.precision}.{self.runtime_version()}.{gpu}.engine"

    def _measure(self, module: nn.Module, example: torch.Tensor, key: str) -> Measurement:
        import torch

        onnx_path = self.cache_dir / f"{key}.onnx"
        ensure_cached(onnx_path, lambda tmp: export_onnx(module, example, tmp))
        engine_path = self.engine_path(key)
        built = ensure_cached(engine_path, lambda tmp: tmp.write_bytes(self._build(onnx_path)))
        self.conversions += built
        serialized = engine_path.read_bytes()
        engine = self._trt.Runtime(self._logger).deserialize_cuda_engine(serialized)
        if engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {engine_path.name}")
        context = engine.create_execution_context()
        buffers = self._bind_buffers(engine, context, example)
        stream = torch.cuda.Stream(self.device)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def timed() -> float:
            start.record(stream)
            if not context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            end.record(stream)
            end.synchronize()
            return float(start.elapsed_time(end))

        if hasattr(engine, "device_memory_size_v2"):  # TensorRT >= 10.1; 11 removed the v1
            scratch = engine.device_memory_size_v2
        else:
            scratch = engine.device_memory_size
        io_bytes = sum(t.numel() * t.element_size() for t in buffers.values())
        with pinned_to_cores(self.threads) as cpus:
            return time_runs(
                timed,
                self.protocol,
                peak_memory_bytes=len(serialized) + int(scratch) + io_bytes,
                extra={
                    "backend": self.name,
                    "provider": self.provider(),
                    "precision": self.precision,
                    "threads": self.threads,
                    "cpus": cpus,
                    "peak_memory_method": MEMORY_METHOD,
                    "model_file": engine_path.name,
                    "converted": built,
                    "timer": "cuda-events",
                },
            )

    def _build(self, onnx_path: Path) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)  # TensorRT 10: networks are always explicit-batch
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
        config = builder.create_builder_config()
        if self.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)  # int8 falls back to fp16, not fp32
        if self.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            _set_uniform_dynamic_ranges(network)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError(f"TensorRT could not build an engine from {onnx_path.name}")
        return bytes(serialized)

    def _bind_buffers(self, engine: Any, context: Any, example: torch.Tensor) -> dict[str, Any]:
        """One device tensor per I/O tensor, addresses set on the context, input filled once."""
        import numpy as np
        import torch

        trt = self._trt
        buffers: dict[str, Any] = {}
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            numpy_dtype = trt.nptype(engine.get_tensor_dtype(name))
            dtype = torch.from_numpy(np.empty(0, dtype=numpy_dtype)).dtype
            shape = tuple(engine.get_tensor_shape(name))
            buffers[name] = torch.empty(shape, dtype=dtype, device=self.device)
            context.set_tensor_address(name, buffers[name].data_ptr())
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                buffers[name].copy_(example.reshape(shape))
        return buffers


def _set_uniform_dynamic_ranges(network: Any) -> None:
    tensors = [network.get_input(i) for i in range(network.num_inputs)]
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        tensors.extend(layer.get_output(j) for j in range(layer.num_outputs))
    for tensor in tensors:
        tensor.set_dynamic_range(-_INT8_LATENCY_RANGE, _INT8_LATENCY_RANGE)
