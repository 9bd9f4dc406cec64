"""The model card's "Input" section: what to feed each file (from card.json's `input` object) and,
per format, a few lines of Python that classify one image file with only the runtime, NumPy and
Pillow — no hwnas import."""

from __future__ import annotations

from typing import Any

PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def input_lines(card: dict[str, Any]) -> list[str]:
    contract = card.get("input") or {}
    if not contract.get("files"):
        return []
    resize = contract["resize"]
    source = resize.get("from")
    size = f"{contract['height']}×{contract['width']}"
    norm = contract["normalisation"]
    lines = [
        "",
        "## Input",
        "",
        f"- {contract['channels']} channel(s), {contract['channel_order']}, resized to {size}"
        + (f" (trained from {source[0]}×{source[1]} images)" if source else "")
        + f": {resize['method']}.",
        "- Pixels as an image file holds them: float files take 8-bit values / 255 (0..1), "
        "uint8 files the values themselves (0..255).",
        f"- The train split's normalisation (mean {_values(norm['mean'])}, std "
        f"{_values(norm['std'])} on 0..1 pixels) is {norm['where']}.",
        f"- Output: logits, one per class, in this order: {_names(contract['class_names'])}.",
        "",
        "| format | input name | shape | layout | dtype | pixels | quantisation |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in contract["files"].items():
        quant = entry.get("quantization")
        lines.append(
            f"| {name} | `{entry['name']}` | {'×'.join(map(str, entry['shape']))} | "
            f"{entry['layout']} | {entry['dtype']} | {entry['pixels']} "
            f"({entry['value_range'][0]:g}..{entry['value_range'][1]:g}) | "
            + (
                f"q = round(pixel / {quant['scale']:.6g}) {_signed(quant['zero_point'])} |"
                if quant
                else "— |"
            )
        )
    for name, entry in contract["files"].items():
        file = card["files"][name]["file"]
        lines += ["", f"### Classify one image with `{file}`", "", "```python"]
        lines += [*snippet(file, entry, contract), "```"]
    return lines


def snippet(file: str, entry: dict[str, Any], contract: dict[str, Any]) -> list[str]:
    """Python that classifies `image.png` with the file at `file` (relative to the run dir)."""
    channels = int(contract["channels"])
    mode = PIL_MODES.get(channels, "RGB")
    width, height = contract["width"], contract["height"]
    onnx = file.endswith(".onnx")
    lines = [
        "import json",
        "",
        "import numpy as np",
        "import onnxruntime as ort"
        if onnx
        else "from ai_edge_litert.interpreter import Interpreter",
        "from PIL import Image",
        "",
        'names = json.load(open("card.json"))["input"]["class_names"]',
        f'image = Image.open("image.png").convert("{mode}").resize(({width}, {height}), '
        "Image.BILINEAR)",
        "x = np.asarray(image, dtype=np.float32)"
        + (" / 255.0" if entry["pixels"] == "float" else "")
        + f"  # {'0..1' if entry['pixels'] == 'float' else '0..255'}",
        f"x = {_arrange(channels, entry['layout'])}  # {entry['layout']}, batch of one",
    ]
    quant = entry.get("quantization")
    if quant:
        lines.append(
            f"x = np.clip(np.round(x / {quant['scale']!r}) {_signed(quant['zero_point'])}, "
            f"{_limits(entry['dtype'])}).astype(np.{entry['dtype']})"
        )
    elif entry["dtype"] != "float32":
        lines.append(f"x = x.astype(np.{entry['dtype']})")
    if onnx:
        lines += [
            f'logits = ort.InferenceSession("{file}").run(None, {{"{entry["name"]}": x}})[0][0]',
        ]
    else:
        lines += [
            f'interpreter = Interpreter(model_path="{file}")',
            "interpreter.allocate_tensors()",
            'interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)',
            "interpreter.invoke()",
            'logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]',
        ]
    return [*lines, "print(names[int(np.argmax(logits))])"]


def _arrange(channels: int, layout: str) -> str:
    if channels == 1:
        return "x[None, None]" if layout == "NCHW" else "x[None, :, :, None]"
    return "x.transpose(2, 0, 1)[None]" if layout == "NCHW" else "x[None]"


def _limits(dtype: str) -> str:
    return "0, 255" if dtype == "uint8" else "-128, 127"


def _values(values: list[float] | None) -> str:
    return "—" if not values else ", ".join(f"{v:.4f}" for v in values)


def _names(names: list[str]) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:20])
    return shown + (f" … ({len(names)} classes)" if len(names) > 20 else "")


def _signed(value: int) -> str:
    return f"- {-value}" if value < 0 else f"+ {value}"
