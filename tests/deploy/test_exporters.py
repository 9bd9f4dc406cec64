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


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("network") / "model.int8.tflite"
    convert_int8(_two_residual_blocks(), torch.zeros(1, 3, 16, 16), path)
    return path


def _assert_int8_adds(path: Path, adds: int) -> None:
    operators = _operators(path)
    names = [name for name, _ in operators]
    assert names.count("ADD") == adds
    assert "DEQUANTIZE" not in names and "QUANTIZE" not in names
    assert all(t == INT8 for name, types in operators if name == "ADD" for t in types)


def test_a_networks_residual_adds_are_int8_adds_without_dequantize(network: Path) -> None:
    _assert_int8_adds(network, adds=2)


def test_a_residual_blocks_micro_model_has_the_same_int8_add(tmp_path: Path) -> None:
    path = tmp_path / "block.int8.tflite"
    block = InvertedResidual(8, 8, kernel=3, stride=1, mid_channels=24).eval()
    convert_int8(block, torch.zeros(1, 8, 8, 8), path)
    _assert_int8_adds(path, adds=1)


def test_host_tflite_micro_matches_litert_within_one_step(network: Path) -> None:
    if importlib.util.find_spec("tflite_micro") is None:
        pytest.skip("the host TFLite Micro interpreter (pip install tflite-micro) is missing")
    from ai_edge_litert.interpreter import Interpreter
    from tflite_micro.python.tflite_micro import runtime

    litert = Interpreter(model_path=str(network))
    litert.allocate_tensors()
    shape = litert.get_input_details()[0]["shape"]
    pattern = ((np.arange(int(np.prod(shape))) * 7 + 3) % 256).astype(np.uint8).view(np.int8)
    litert.set_tensor(litert.get_input_details()[0]["index"], pattern.reshape(shape))
    litert.invoke()
    expected = litert.get_tensor(litert.get_output_details()[0]["index"]).astype(np.int32)
    micro = runtime.Interpreter.from_file(str(network))
    micro.set_input(pattern.reshape(shape), 0)
    micro.invoke()
    got = micro.get_output(0).astype(np.int32)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1
