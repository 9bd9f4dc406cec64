"""Run an exported file in its own runtime on NCHW float32 images (in the range the file takes)
and return float logits: ONNX files in ONNX Runtime, TFLite files in the LiteRT interpreter (NHWC,
uint8 and int8 inputs fitted, int8 outputs dequantised), engines in TensorRT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common.quiet import silenced
from profilers.timers.base import fit_input
from profilers.timers.ort import numpy_dtype

ORT_CHUNK = 256


Quantization = tuple[float, int]


def predict_file(
    path: Path, images: np.ndarray, input_quantization: Quantization | None = None
) -> np.ndarray:
    """`input_quantization` (scale, zero point): how the images become an int8 file's input
    (`deploy.contract.pixel_quantization`), where it differs from the file's own."""
    if path.suffix == ".onnx":
        return predict_onnx(path, images)
    if path.suffix == ".tflite":
        return predict_tflite(path, images, input_quantization)
    if path.suffix == ".engine":
        from deploy.tensorrt import EngineRunner

        return EngineRunner(path).predict(images)
    raise ValueError(f"no runtime for {path.name}")


def predict_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    dtype = numpy_dtype(model_input.type)
    fixed_batch = model_input.shape[0] if isinstance(model_input.shape[0], int) else None
    chunk = fixed_batch or ORT_CHUNK
    outputs = []
    for start in range(0, len(images), chunk):
        batch = torch.from_numpy(images[start : start + chunk])
        pieces = [batch[i : i + 1] for i in range(len(batch))]
        if not fixed_batch or len(batch) == fixed_batch:
            pieces = [batch]
        for piece in pieces:
            feed = fit_input(piece, model_input.shape, dtype)
            outputs.append(session.run(None, {model_input.name: feed})[0])
    return np.concatenate(outputs).astype(np.float32)


def predict_tflite(
    path: Path, images: np.ndarray, input_quantization: Quantization | None = None
) -> np.ndarray:
    """One image per `invoke` (the files have batch 1, as deployed); integer inputs quantised
    with `input_quantization`, else with the file's own."""
    from ai_edge_litert.interpreter import Interpreter

    with silenced():
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    scale, zero_point = target["quantization"]
    quantization = input_quantization or source["quantization"]
    outputs = []
    for image in images:
        array = fit_input(
            torch.from_numpy(image[None]), source["shape"], source["dtype"], quantization
        )
        interpreter.set_tensor(source["index"], array)
        interpreter.invoke()
        output = interpreter.get_tensor(target["index"]).astype(np.float32)
        outputs.append((output - zero_point) * scale if scale else output)
    return np.concatenate(outputs)
