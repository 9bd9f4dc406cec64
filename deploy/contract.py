"""The input contract of exported files: they take pixels as a camera or an image file gives them
(floats in [0, 1], or raw 0..255 with `pixels="uint8"`), the train split's normalisation runs
inside the graph, and the card states shape, layout, dtype, range, quantisation, channel order,
resize and class names, read from each file itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.files import write_json_atomically
from deploy.checks import read_json_or_empty

if TYPE_CHECKING:
    import torch.nn as nn

PIXEL_KINDS = ("float", "uint8")
INPUTS_FILE = "inputs.json"  # export/inputs.json: per format, the pixels it takes
INT8_TFLITE_FORMATS = ("tflite-int8", "c-array")  # full-integer TFLite, int8 input


def check_pixels(kind: str) -> str:
    if kind not in PIXEL_KINDS:
        raise ValueError(f"unknown input pixels {kind!r}; valid: {', '.join(PIXEL_KINDS)}")
    return kind


def pixel_max(kind: str) -> float:
    """The largest pixel value a file of this kind takes: 1.0 (float) or 255.0 (uint8)."""
    return 255.0 if check_pixels(kind) == "uint8" else 1.0


def value_range(kind: str) -> list[float]:
    return [0.0, pixel_max(kind)]


def deployable_module(
    module: nn.Module, mean: Sequence[float], std: Sequence[float], kind: str
) -> nn.Module:
    """`module` (trained on (x − mean) / std of [0, 1] pixels) behind a per-channel 1×1 depthwise
    convolution that applies that normalisation to pixels in the file's range. A convolution
    rather than a subtraction and a multiplication: one op, per-channel int8 weights, and an
    int8 kernel in every runtime (TFLite Micro included). Folding it into the stem convolution
    would change what the stem's zero padding means, so it stays a separate op."""
    import torch
    import torch.nn as nn

    channels, top = len(mean), pixel_max(kind)
    normalise = nn.Conv2d(channels, channels, 1, groups=channels)
    weight = torch.tensor([1.0 / (s * top) for s in std]).view(-1, 1, 1, 1)
    bias = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)])
    normalise.weight = nn.Parameter(weight)
    normalise.bias = nn.Parameter(bias)
    return nn.Sequential(normalise, module).eval()


def folds_normalisation(mean: Sequence[float], std: Sequence[float]) -> bool:
    """Whether a full-integer file can take the normalisation into its input's quantisation
    instead of an op: one mean and one std for every channel (always so for one channel). The
    input's per-tensor scale and zero point then map each 8-bit pixel straight to its normalised
    value (TFLite's usual uint8-camera-input models do the same), so the file runs no extra
    op; the zero point rounds the mean to a whole pixel level (at most half an input step)."""
    return len(set(mean)) == 1 and len(set(std)) == 1


def pixel_quantization(kind: str) -> dict[str, float | int]:
    """How a pixel of `kind` becomes a full-integer file's int8 input: q = round(pixel / scale)
    + zero_point, i.e. q = 8-bit pixel − 128 for either kind. Every hwnas int8 TFLite file
    takes that; its own input quantisation describes the pixels, or the normalised values
    where the normalisation is folded into it (`folds_normalisation`)."""
    return {"scale": pixel_max(kind) / 255.0, "zero_point": -128}


def quantization_pair(entry: dict[str, Any] | None) -> tuple[float, int] | None:
    """A recorded {"scale", "zero_point"} as the (scale, zero point) runtimes take; None stays."""
    if not entry:
        return None
    return float(entry["scale"]), int(entry["zero_point"])


def input_entry(
    fmt: str, kind: str, mean: Sequence[float], std: Sequence[float], drift: float
) -> dict[str, Any]:
    """export/inputs.json's entry of a format: the pixels it takes, the PyTorch check of the
    normalisation and, for full-integer TFLite files (and the C array of one), how pixels map to
    the int8 input and where the normalisation is."""
    entry: dict[str, Any] = {"pixels": kind, "normalisation_max_abs_diff": drift}
    if fmt in INT8_TFLITE_FORMATS:
        entry["pixel_quantization"] = pixel_quantization(kind)
        folded = folds_normalisation(mean, std)
        entry["normalisation"] = "input quantisation" if folded else "op"
    return entry


def graph_module(module: nn.Module, kind: str) -> nn.Module:
    """What the fp32 exporters trace: a uint8 file casts its input to float as its first op."""
    import torch
    import torch.nn as nn

    class ToFloat(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.to(torch.float32)

    return nn.Sequential(ToFloat(), module).eval() if check_pixels(kind) == "uint8" else module


def pixels_from_normalised(
    images: np.ndarray, mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """[0, 1] pixels (N, C, H, W) back from the normalised tensors the search trained on."""
    shift = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    scale = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return np.clip(images * scale + shift, 0.0, 1.0).astype(np.float32)


def file_pixels(pixels: np.ndarray, kind: str) -> np.ndarray:
    """[0, 1] pixels as a file of `kind` takes them, as float32: unchanged, or 0..255 integers."""
    if check_pixels(kind) == "uint8":
        return np.round(pixels * 255.0).astype(np.float32)
    return pixels.astype(np.float32, copy=False)


def record_inputs(export_dir: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Merge per-format entries ({"pixels": kind, "normalisation_max_abs_diff": d}) into
    export/inputs.json; formats exported before keep theirs."""
    path = export_dir / INPUTS_FILE
    write_json_atomically(path, {**read_json_or_empty(path), **entries})


def read_inputs(export_dir: Path) -> dict[str, dict[str, Any]]:
    return read_json_or_empty(export_dir / INPUTS_FILE)


def file_io(path: Path) -> dict[str, dict[str, Any]]:
    """The first input and output of an exported file, as its runtime reports them: name, shape
    (a string for a free dimension), numpy dtype and, for int8 / uint8 tensors with a scale,
    the quantisation (real = scale × (q − zero_point))."""
    if path.suffix == ".onnx":
        return _onnx_io(path)
    if path.suffix == ".tflite":
        return _tflite_io(path)
    return {}


def _onnx_io(path: Path) -> dict[str, dict[str, Any]]:
    import onnxruntime as ort

    from profilers.timers.ort import numpy_dtype

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def describe(tensor: Any) -> dict[str, Any]:
        shape = [d if isinstance(d, int) else str(d) for d in tensor.shape]
        return {"name": tensor.name, "shape": shape, "dtype": numpy_dtype(tensor.type)}

    return {
        "input": describe(session.get_inputs()[0]),
        "output": describe(session.get_outputs()[0]),
    }


def _tflite_io(path: Path) -> dict[str, dict[str, Any]]:
    from ai_edge_litert.interpreter import Interpreter

    from common.quiet import silenced

    with silenced():
        interpreter = Interpreter(model_path=str(path))

    def describe(detail: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": detail["name"],
            "shape": [int(d) for d in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]).name,
        }
        scale, zero_point = detail["quantization"]
        if scale:
            entry["quantization"] = {"scale": float(scale), "zero_point": int(zero_point)}
        return entry

    return {
        "input": describe(interpreter.get_input_details()[0]),
        "output": describe(interpreter.get_output_details()[0]),
    }


def layout(shape: Sequence[Any], channels: int, height: int, width: int) -> str:
    """NCHW or NHWC, from where the channel axis sits in a 4-D input shape."""
    dims = list(shape)[1:]
    if dims == [height, width, channels] and dims != [channels, height, width]:
        return "NHWC"
    return "NCHW"


def input_contract(
    dataset: dict[str, Any],
    input_shape: Sequence[int],
    files: dict[str, Path],
    inputs: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The card's `input` object: what to feed every file, from the run's dataset record, the
    files' own tensors and the pixels each was exported for."""
    channels, height, width = (int(d) for d in input_shape)
    source = dataset.get("source_size")
    contract: dict[str, Any] = {
        "channels": channels,
        "height": height,
        "width": width,
        "channel_order": dataset.get("color") or ("grayscale" if channels == 1 else "RGB"),
        "resize": {
            "to": [height, width],
            "from": source,
            "method": "bilinear, antialiased when shrinking, aspect ratio not kept "
            "(Pillow: image.resize((width, height), Image.BILINEAR))",
        },
        "pixels": "8-bit pixel values; float files take them divided by 255",
        "normalisation": {
            "mean": dataset.get("mean"),
            "std": dataset.get("std"),
            "where": "inside every file (a 1×1 depthwise convolution before the network, or "
            "the int8 input's quantisation where every channel has one mean and std): do not "
            "normalise again",
        },
        "class_names": list(dataset.get("class_names") or []),
        "files": {},
    }
    for name, path in files.items():
        io = file_io(path)
        if not io:
            continue
        recorded = inputs.get(name) or {}
        kind = str(recorded.get("pixels", "float"))
        entry = {
            **io["input"],
            "layout": layout(io["input"]["shape"], channels, height, width),
            "pixels": kind,
            "value_range": value_range(kind),
            "output": io["output"],
            "normalisation": recorded.get("normalisation", "op"),
        }
        _pixel_quantization(entry, recorded)
        check = recorded.get("normalisation_max_abs_diff")
        if check is not None:
            entry["normalisation_max_abs_diff"] = check
        contract["files"][name] = entry
    return contract


def _pixel_quantization(entry: dict[str, Any], recorded: dict[str, Any]) -> None:
    """`quantization` becomes how pixels map to the int8 input (what a user feeds), the file's
    own (normalised values where the normalisation is folded in) kept as `file_quantization`."""
    mapping = recorded.get("pixel_quantization")
    if not mapping or "quantization" not in entry:
        return
    entry["file_quantization"] = entry["quantization"]
    entry["quantization"] = dict(mapping)
