"""TensorRT engines from exported ONNX files, written against TensorRT 10's Python API: fp16
engines from the fp32 file, int8 engines from the QDQ-quantised file (explicit quantisation, so
the calibrated scales travel in the file), run and timed with CUDA events.

TensorRT cannot be installed from PyPI (its wheels download from NVIDIA's index), so on machines
without it `unavailable_reason()` says why and nothing here is called."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

PRECISIONS = ("fp16", "int8", "fp32")


def unavailable_reason() -> str | None:
    from profilers.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend.unavailable_reason()


def build_engine(onnx_path: Path, precision: str) -> bytes:
    """A serialized engine for this GPU. int8 expects a Q/DQ ONNX file (deploy's onnx-int8)."""
    import tensorrt as trt

    if precision not in PRECISIONS:
        raise ValueError(f"tensorrt precision must be one of {PRECISIONS}, not {precision!r}")
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: always explicit batch
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # scales come from the file's Q/DQ nodes
    _fix_dynamic_batch(builder, network, config)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build an engine from {onnx_path.name}")
    return bytes(serialized)


def _fix_dynamic_batch(builder: Any, network: Any, config: Any) -> None:
    """Files exported with a free batch dimension need an optimisation profile (batch 1..64)."""
    tensor = network.get_input(0)
    shape = tuple(tensor.shape)
    if shape[0] != -1:
        return
    profile = builder.create_optimization_profile()
    rest = shape[1:]
    profile.set_shape(tensor.name, (1, *rest), (1, *rest), (64, *rest))
    config.add_optimization_profile(profile)


class EngineRunner:
    """One deserialized engine with device buffers for batch-1 inference."""

    def __init__(self, engine_path: Path, device: str = "cuda") -> None:
        import tensorrt as trt
        import torch

        self.trt, self.torch, self.device = trt, torch, device
        runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        self.engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {engine_path.name}")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream(device)
        self.buffers: dict[str, Any] = {}
        self.input_name = self.output_name = ""
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = [1 if d == -1 else d for d in self.engine.get_tensor_shape(name)]
            if is_input:
                self.context.set_input_shape(name, shape)
                self.input_name = name
            else:
                self.output_name = name
            self.buffers[name] = torch.empty(shape, dtype=torch.float32, device=device)
            self.context.set_tensor_address(name, self.buffers[name].data_ptr())

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")

    def predict(self, images: np.ndarray) -> np.ndarray:
        outputs = []
        for image in images:
            self.buffers[self.input_name].copy_(self.torch.from_numpy(image[None]))
            self._execute()
            self.stream.synchronize()
            outputs.append(self.buffers[self.output_name].cpu().numpy())
        return np.concatenate(outputs)

    def time_ms(self, runs: int = 200, warmup: int = 20) -> list[float]:
        """Per-run GPU time from CUDA events around `execute_async_v3`."""
        torch = self.torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        samples = []
        for index in range(warmup + runs):
            start.record(self.stream)
            self._execute()
            end.record(self.stream)
            end.synchronize()
            if index >= warmup:
                samples.append(float(start.elapsed_time(end)))
        return samples
