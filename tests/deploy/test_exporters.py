"""The `tflite-int8` exporter on residual blocks: the residual add is quantised (an int8 ADD, no
float detour), in a network and in a block's micro-model alike, and the host TFLite Micro
interpreter gives LiteRT's int8 output within one quantisation step."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from deploy.tflm_arena import operator_name, read_model
from lut.modules import ConvBNAct, InvertedResidual
from profilers.backends.mcu_backend import convert_int8

INT8 = 9  # the TFLite schema's TensorType.INT8


def _operators(path: Path) -> list[tuple[str, list[int]]]:
    """Each operator's name and the types of its tensor inputs."""
    model = read_model(path)
    graph = model.subgraphs[0]
    return [
        (operator_name(model, op), [int(graph.tensors[i].type) for i in op.inputs if i >= 0])
        for op in graph.operators
    ]


def _two_residual_blocks() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        ConvBNAct(3, 8, kernel=3, stride=2),
        InvertedResidual(8, 8, kernel=3, stride=1, mid_channels=24),
        InvertedResidual(8, 8, kernel=5, stride=1, mid_channels=32),
    ).eval()


@pytest.mark.parametrize(
    ("module", "shape", "adds"),
    [
        (_two_residual_blocks, (3, 16, 16), 2),
        (lambda: InvertedResidual(8, 8, kernel=3, stride=1, mid_channels=24).eval(), (8, 8, 8), 1),
    ],
    ids=["network", "micro-model"],
)
def test_residual_add_is_an_int8_add_without_dequantize(
    module: object, shape: tuple[int, int, int], adds: int, tmp_path: Path
) -> None:
    path = tmp_path / "model.int8.tflite"
    convert_int8(module(), torch.zeros(1, *shape), path)  # type: ignore[operator]
    operators = _operators(path)
    names = [name for name, _ in operators]
    assert names.count("ADD") == adds
    assert "DEQUANTIZE" not in names and "QUANTIZE" not in names
    assert all(t == INT8 for name, types in operators if name == "ADD" for t in types)


def test_host_tflite_micro_matches_litert_within_one_step(tmp_path: Path) -> None:
    if importlib.util.find_spec("tflite_micro") is None:
        pytest.skip("the host TFLite Micro interpreter (pip install tflite-micro) is missing")
    from ai_edge_litert.interpreter import Interpreter
    from tflite_micro.python.tflite_micro import runtime

    path = tmp_path / "model.int8.tflite"
    convert_int8(_two_residual_blocks(), torch.zeros(1, 3, 16, 16), path)
    litert = Interpreter(model_path=str(path))
    litert.allocate_tensors()
    shape = litert.get_input_details()[0]["shape"]
    pattern = ((np.arange(int(np.prod(shape))) * 7 + 3) % 256).astype(np.uint8).view(np.int8)
    litert.set_tensor(litert.get_input_details()[0]["index"], pattern.reshape(shape))
    litert.invoke()
    expected = litert.get_tensor(litert.get_output_details()[0]["index"]).astype(np.int32)
    micro = runtime.Interpreter.from_file(str(path))
    micro.set_input(pattern.reshape(shape), 0)
    micro.invoke()
    got = micro.get_output(0).astype(np.int32)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1
