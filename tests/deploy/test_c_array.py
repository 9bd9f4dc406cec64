"""The c-array export: C source an MCU project compiles, built for the Cortex-M4 and run on the
emulated board, printing the same output bytes as the host TFLite Micro interpreter."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from deploy.c_array import (
    ARENA_MARGIN_BYTES,
    default_arena_bytes,
    model_data_cc,
    resolver_method,
    write_c_project,
)
from deploy.formats import get_format
from deploy.tflm_arena import predict_arena
from lut.opspec import OpSpec
from tests.profilers.mcu.conftest import mcu_dir  # noqa: F401  (the shared MCU build folder)

CONV = OpSpec(op="conv", in_channels=3, out_channels=8, height=16, width=16, kernel=3, stride=2)


def test_operator_names_map_to_resolver_methods() -> None:
    assert resolver_method("CONV_2D") == "AddConv2D"
    assert resolver_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert resolver_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert resolver_method("RELU6") == "AddRelu6"


def test_model_data_is_an_aligned_const_array_of_the_bytes() -> None:
    text = model_data_cc(bytes([0, 1, 255]))
    assert "alignas(16) const unsigned char g_model_data[]" in text
    assert "0x00, 0x01, 0xff" in text and "g_model_data_len = 3;" in text
    assert get_format("c-array").needs == ("tflite-int8",)
    assert not get_format("c-array").verifiable


def _host_output(model: Path) -> bytes:
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(model))
    shape = interpreter.get_input_details(0)["shape"]
    pattern = (np.arange(int(np.prod(shape))) * 7 + 3).astype(np.uint8).view(np.int8)
    interpreter.set_input(pattern.reshape(shape), 0)
    interpreter.invoke()
    return bytes(interpreter.get_output(0).tobytes())


def test_project_builds_for_the_m4_and_matches_the_host_interpreter_on_the_emulated_board(
    mcu_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    if importlib.util.find_spec("tflite_micro") is None:
        pytest.skip("the host TFLite Micro interpreter (pip install tflite-micro) is missing")
    from profilers.backends.mcu_backend import convert_int8
    from profilers.export import op_model
    from profilers.mcu.build import build_program
    from profilers.mcu.emulator import run_program
    from profilers.mcu.toolchain import get_core

    model = tmp_path / "model.int8.tflite"
    convert_int8(*op_model(CONV), model)
    files = write_c_project(model, tmp_path / "project")
    assert [f.name for f in files] == ["model_data.h", "model_data.cc", "main.cc"]
    sources = [tmp_path / "project" / "model_data.cc", tmp_path / "project" / "main.cc"]
    core = get_core("m4")
    printed = run_program(core, build_program(core, sources, tmp_path / "app.elf"))
    lines = dict(line.split(" ", 1) for line in printed.splitlines() if " " in line)
    assert int(lines["arena_used"]) == predict_arena(model).arena_bytes
    assert default_arena_bytes(model) - ARENA_MARGIN_BYTES < int(lines["arena_used"]) + 1024
    assert bytes.fromhex(lines["output"]) == _host_output(model)
