"""The predicted TFLM arena (deploy/tflm_arena.py) equals what the firmware's TFLite Micro
reports after AllocateTensors() on the emulated Cortex-M4, for micro-models that exercise each
kernel's persistent buffers and CMSIS-NN scratch (im2col, depthwise, the int8 residual add)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.tflm_arena import predict_arena
from lut.opspec import OpSpec
from profilers.mcu.build import Firmware
from profilers.mcu.emulator import run_model
from profilers.mcu.toolchain import get_core

SPECS = [
    OpSpec(op="conv", in_channels=3, out_channels=8, height=16, width=16, kernel=3, stride=2),
    OpSpec(op="mbconv", in_channels=8, out_channels=8, height=8, width=8, kernel=5, expansion=3.0),
    OpSpec(op="mbconv", in_channels=8, out_channels=16, height=8, width=8, kernel=7,
           expansion=6.0, stride=2),
    OpSpec(op="linear", in_channels=32, out_channels=10),
]  # fmt: skip


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.op}-k{s.kernel}")
def test_predicted_arena_equals_the_firmware_report(
    m4_firmware: Firmware, spec: OpSpec, tmp_path: Path
) -> None:
    from profilers.backends.mcu_backend import convert_int8
    from profilers.export import op_model

    model = tmp_path / "op.int8.tflite"
    convert_int8(*op_model(spec), model)
    report = run_model(get_core("m4"), m4_firmware.elf, model.read_bytes(), invokes=1)
    predicted = predict_arena(model)
    assert predicted.arena_bytes == report.arena_used_bytes
    assert 0 < predicted.tail_bytes < predicted.arena_bytes


def test_predicted_flash_is_never_below_the_project_the_linker_builds(
    m4_firmware: Firmware, tmp_path: Path
) -> None:
    from deploy.mcu_memory import file_memory, file_operators
    from profilers.backends.mcu_backend import convert_int8
    from profilers.export import op_model
    from profilers.mcu.flash import program_flash_bytes

    model = tmp_path / "op.int8.tflite"
    convert_int8(*op_model(SPECS[1]), model)
    measured = program_flash_bytes(get_core("m4"), model.read_bytes(), file_operators(model))
    predicted = file_memory(model).flash_bytes
    assert measured <= predicted <= measured * 1.02
