"""Classify images with an exported file, driven by the run's card.json: the file runs in its own
runtime (ONNX Runtime or LiteRT, not PyTorch) on pixels prepared as the card's `input` contract
says, and each image gets its top-k classes with softmax scores."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deploy.card_input import PIL_MODES
from deploy.child import DeployError, read_json
from deploy.contract import file_pixels, quantization_pair

MAX_TOP_K = 1000


@dataclass(frozen=True)
class Batch:
    """Images of one input argument: [0, 1] pixels (N, C, H, W), names, labels if known."""

    pixels: np.ndarray
    names: list[str]
    labels: np.ndarray | None = None


def classify(
    run_dir: Path, fmt: str | None, inputs: Sequence[Path], *, top_k: int = 5
) -> Iterator[dict[str, Any]]:
    """One record per image ({"input", "top": [{"class", "index", "score"}], "label"?}), then,
    for inputs with labels (an .npz with `y`), one {"summary": ...} with the accuracy."""
    card = read_json(Path(run_dir) / "card.json", "the model card: run `hwnas export` first")
    contract = card.get("input") or {}
    files = contract.get("files") or {}
    if not files:
        raise DeployError(f"{run_dir}/card.json states no input contract: re-run `hwnas export`")
    name = fmt or next(iter(files))
    if name not in files:
        raise DeployError(f"{run_dir} has no exported {name}; it has: {', '.join(files)}")
    if not 1 <= top_k <= MAX_TOP_K:
        raise DeployError(f"top-k must be 1..{MAX_TOP_K}, got {top_k}")
    path = Path(run_dir) / card["files"][name]["file"]
    classes = list(contract.get("class_names") or [])
    correct = total = 0
    for source in inputs:
        batch = load_inputs(source, contract)
        pixels = file_pixels(batch.pixels, files[name]["pixels"])
        logits = _predict(path, pixels, quantization_pair(files[name].get("quantization")))
        for index, row in enumerate(logits):
            record = _top(batch.names[index], row, classes, top_k)
            if batch.labels is not None:
                label = int(batch.labels[index])
                record["label"] = classes[label] if label < len(classes) else str(label)
                correct += int(np.argmax(row) == label)
                total += 1
            yield record
    if total:
        yield {"summary": {"format": name, "images": total, "accuracy": correct / total}}


def load_inputs(source: Path, contract: dict[str, Any]) -> Batch:
    """An image file (Pillow, as the card's snippets read it) or an .npz (`x`, optional `y`),
    resized to the contract's size; DeployError naming the file when it cannot be read."""
    if not source.is_file():
        raise DeployError(f"{source}: no such file")
    if source.suffix.lower() == ".npz":
        return _npz(source, contract)
    return Batch(_image(source, contract)[None], [source.name])


def _image(source: Path, contract: dict[str, Any]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    channels = int(contract["channels"])
    size = (int(contract["width"]), int(contract["height"]))
    try:
        with Image.open(source) as image:
            resized = image.convert(PIL_MODES.get(channels, "RGB")).resize(
                size, Image.Resampling.BILINEAR
            )
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise DeployError(f"{source}: cannot read image ({exc})") from None
    array = np.asarray(resized, dtype=np.float32) / 255.0
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _npz(source: Path, contract: dict[str, Any]) -> Batch:
    from search.data import DatasetError
    from search.data.arrays import load_npz
    from search.data.splits import resize_images

    try:
        raw = load_npz(source, name=source.stem)
    except DatasetError as exc:
        raise DeployError(str(exc)) from None
    channels, height, width = (int(contract[k]) for k in ("channels", "height", "width"))
    if raw.images.shape[1] != channels:
        raise DeployError(
            f"{source}: images have {raw.images.shape[1]} channel(s), the model takes {channels}"
        )
    if height != width:
        raise DeployError(f"{source}: the model takes {height}×{width}: classify image files")
    pixels = resize_images(raw.images, height)
    names = [f"{source.name}[{index}]" for index in range(len(pixels))]
    return Batch(pixels, names, raw.labels)


def _predict(path: Path, inputs: np.ndarray, quantization: tuple[float, int] | None) -> np.ndarray:
    from deploy.runtime import predict_file

    return predict_file(path, inputs, quantization)


def _top(name: str, logits: np.ndarray, classes: list[str], top_k: int) -> dict[str, Any]:
    shifted = np.exp(logits - logits.max())
    scores = shifted / shifted.sum()
    order = np.argsort(-scores, kind="stable")[:top_k]
    return {
        "input": name,
        "top": [
            {
                "class": classes[i] if i < len(classes) else str(i),
                "index": int(i),
                "score": float(scores[i]),
            }
            for i in order
        ],
    }
