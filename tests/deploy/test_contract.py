"""A downloaded model works as its card says: exported files take pixels (the normalisation is
inside), and driving each file with only card.json, Pillow, NumPy and its runtime — no project
code in the inference path — reproduces the card's test accuracy, for a dataset whose mean and
std are far from 0 and 1 and for a colour one, with float and with uint8 input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deploy.api import export_run
from deploy.testing import make_trained_run
from search.data.splits import stratified_split
from service.cli.main import main

pytestmark = pytest.mark.slow

FORMATS = ["onnx", "tflite", "onnx-int8", "tflite-int8"]
IMAGES = 2500  # a 500-image test split: 0.2 pp per image


def bright_bars(path: Path, *, size: int, channels: int, seed: int = 0) -> None:
    """A 10-class task on bright, low-contrast images (pixel mean ~0.7, std ~0.07): class k is a
    slightly brighter bar, horizontal for k < 5 and vertical otherwise, at a place set by k.
    Colour images get a different brightness per channel."""
    rng = np.random.default_rng(seed)
    labels = np.arange(IMAGES) % 10
    images = rng.integers(150, 200, (IMAGES, size, size, channels)).astype(np.int16)
    images += np.arange(channels, dtype=np.int16) * 12 - 12 * (channels > 1)
    step, length = size // 6, size - 4
    for i, label in enumerate(labels):
        place = 2 + (label % 5) * step
        bar = (slice(place, place + 2), slice(2, 2 + length))
        images[(i, *(bar if label < 5 else bar[::-1]))] += 45
    pixels = np.clip(images, 0, 255).astype(np.uint8)
    np.savez(
        path,
        x=pixels[..., 0] if channels == 1 else pixels,
        y=labels,
        class_names=np.array([f"bar{k}" for k in range(10)]),
    )


@pytest.fixture(scope="module", params=[(16, 1), (28, 3)], ids=["gray16", "rgb28"])
def trained(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    size, channels = request.param
    root = tmp_path_factory.mktemp(f"contract{size}x{channels}")
    bright_bars(root / "bars.npz", size=size, channels=channels)
    make_trained_run(root / "run", dataset=str(root / "bars.npz"), epochs=2)
    return root


def user_images(dataset: Path, card: dict[str, Any]) -> tuple[list[Any], np.ndarray]:
    """The test split's images as a user holds them (8-bit, at their own size), as Pillow images."""
    from PIL import Image

    arrays = np.load(dataset)
    labels = arrays["y"]
    _, _, test = stratified_split(
        labels, num_classes=10, val_fraction=0.2, test_fraction=0.2, seed=0
    )
    mode = "L" if card["input"]["channels"] == 1 else "RGB"
    return [Image.fromarray(arrays["x"][i], mode) for i in test], labels[test]


def feed(image: Any, entry: dict[str, Any], contract: dict[str, Any]) -> np.ndarray:
    """One image as the card says the file takes it."""
    from PIL import Image

    size = (contract["width"], contract["height"])
    x = np.asarray(image.resize(size, Image.BILINEAR), dtype=np.float32)
    x = x / 255.0 if entry["pixels"] == "float" else x
    x = x[:, :, None] if x.ndim == 2 else x
    x = x.transpose(2, 0, 1)[None] if entry["layout"] == "NCHW" else x[None]
    quant = entry.get("quantization")
    if quant:
        info = np.iinfo(entry["dtype"])
        x = np.clip(np.round(x / quant["scale"]) + quant["zero_point"], info.min, info.max)
    return x.astype(entry["dtype"])


def predictions(path: Path, inputs: list[np.ndarray]) -> np.ndarray:
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.array([session.run(None, {name: x})[0][0].argmax() for x in inputs])
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    found = []
    for x in inputs:
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        found.append(interpreter.get_tensor(target["index"])[0].argmax())
    return np.array(found)


@pytest.mark.parametrize("pixels", ["float", "uint8"])
def test_every_file_reaches_the_cards_accuracy_driven_by_the_card_alone(
    trained: Path, pixels: str, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    result = export_run(run, FORMATS, pixels=pixels, quick=True)
    assert not result["errors"]
    card = json.loads((run / "card.json").read_text())  # what a user downloads
    contract = card["input"]
    assert contract["normalisation"]["mean"][0] > 0.5  # far from the 0 the files would assume
    assert contract["class_names"] == [f"bar{k}" for k in range(10)]
    images, labels = user_images(trained / "bars.npz", card)
    for fmt in FORMATS:
        entry = contract["files"][fmt]
        assert entry["pixels"] == pixels
        assert entry["value_range"] == [0.0, 255.0 if pixels == "uint8" else 1.0]
        assert entry["normalisation_max_abs_diff"] < 1e-4  # PyTorch: pixels + graph == training
        inputs = [feed(image, entry, contract) for image in images]
        accuracy = float((predictions(run / card["files"][fmt]["file"], inputs) == labels).mean())
        assert card["accuracy"][fmt] > 0.3, "the task must be learnt for the check to mean much"
        assert abs(accuracy - card["accuracy"][fmt]) <= 0.005, (fmt, accuracy, card["accuracy"])
    quant = contract["files"]["tflite-int8"]["quantization"]
    assert quant["zero_point"] == -128  # an 8-bit pixel p maps exactly to q = p - 128
    assert quant["scale"] == pytest.approx(1.0 if pixels == "uint8" else 1 / 255, rel=1e-6)
    assert_normalisation_placed(run, contract)


def assert_normalisation_placed(run: Path, contract: dict[str, Any]) -> None:
    """One channel: the int8 TFLite file takes the normalisation into its input's quantisation
    (no op before the network; the file's scale is 1 / (255 std)); colour images with one mean
    per channel keep the 1×1 depthwise convolution. fp32 files keep it either way."""
    from deploy.tflm_arena import operator_name, read_model

    entry, norm = contract["files"]["tflite-int8"], contract["normalisation"]
    model = read_model(run / "export" / "model.int8.tflite")
    graph = model.subgraphs[0]
    pointwise_depthwise = [  # the normalisation's op: the network's depthwise kernels are k×k
        op
        for op in graph.operators
        if operator_name(model, op) == "DEPTHWISE_CONV_2D"
        and list(graph.tensors[op.inputs[1]].shape[1:3]) == [1, 1]
    ]
    if contract["channels"] == 1:
        assert entry["normalisation"] == "input quantisation" and not pointwise_depthwise
        own = entry["file_quantization"]
        assert own["scale"] == pytest.approx(1 / (255 * norm["std"][0]), rel=1e-5)
        assert own["zero_point"] == round(255 * norm["mean"][0]) - 128
    else:
        assert entry["normalisation"] == "op" and len(pointwise_depthwise) == 1
    assert contract["files"]["tflite"]["normalisation"] == "op"
    names = [t.name for t in model.subgraphs[0].tensors if t.name]
    assert len(names) == 2  # the input's and the output's: the others take flash for nothing


def test_classify_reproduces_the_cards_accuracy_and_reads_image_files(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    export_run(run, ["onnx", "tflite-int8"], pixels="uint8", quick=True)
    card = json.loads((run / "card.json").read_text())
    images, labels = user_images(trained / "bars.npz", card)
    test_npz = tmp_path / "test.npz"
    np.savez(test_npz, x=np.stack([np.asarray(image) for image in images]), y=labels)
    for fmt in ("onnx", "tflite-int8"):
        assert main(["classify", "--run", str(run), "--format", fmt, "--json", str(test_npz)]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        summary = lines[-1]["summary"]
        assert summary["images"] == len(labels)
        assert abs(summary["accuracy"] - card["accuracy"][fmt]) <= 0.005
    png = tmp_path / "one.png"
    images[0].save(png)
    assert main(["classify", "--run", str(run), "--top-k", "2", str(png)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("one.png: bar") and line.count("(") == 2


def test_card_markdown_holds_runnable_snippets(trained: Path, tmp_path: Path) -> None:
    """Each format's snippet in card.md, run as it stands on one test image, prints a class."""
    import subprocess
    import sys

    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    export_run(run, ["onnx", "tflite-int8"], quick=True)
    card = json.loads((run / "card.json").read_text())
    images, _ = user_images(trained / "bars.npz", card)
    images[0].save(run / "image.png")
    blocks = (run / "card.md").read_text().split("```python\n")[1:]
    assert len(blocks) == 2
    for block in blocks:
        code = block.split("```")[0]
        assert "import hwnas" not in code and "deploy" not in code
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=run, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() in card["input"]["class_names"]


def test_bad_classify_input_is_one_line_exit_2(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image")
    assert main(["classify", "--run", str(trained / "run"), str(garbage)]) == 2  # not exported
    assert capsys.readouterr().err.count("\n") == 1
    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    export_run(run, ["onnx"], quick=True)
    for argv in (
        [str(garbage)],
        ["--format", "tflite", str(garbage)],
        ["--top-k", "0", str(garbage)],
        [str(tmp_path / "missing.png")],
    ):
        assert main(["classify", "--run", str(run), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("hwnas: error: ") and err.count("\n") == 1, err
