"""The serial protocol for real: the serial build of the firmware on an emulated board (QEMU's
UART on a pseudo-terminal), driven by pyserial exactly as a board on a USB serial port is."""

from __future__ import annotations

from pathlib import Path

import pytest

from profilers.backends.mcu_backend import convert_int8
from profilers.export import op_model
from profilers.mcu.build import Firmware, ensure_firmware
from profilers.mcu.emulator import emulated_serial_board, run_model
from profilers.mcu.serial_link import SerialBoard
from profilers.mcu.toolchain import get_core
from tests.profilers.mcu.test_backend import CONV, LINEAR


def test_emulated_board_over_serial_reports_the_same_counts_as_semihosting(
    m4_firmware: Firmware, tmp_path: Path
) -> None:
    pytest.importorskip("serial", reason="pyserial is not installed")
    core = get_core("m4")
    models = []
    for spec in (CONV, LINEAR):
        path = tmp_path / f"{spec.op}.tflite"
        convert_int8(*op_model(spec), path)
        models.append(path.read_bytes())
    serial_build = ensure_firmware(core, transport="serial")
    with emulated_serial_board(core, serial_build.elf) as port, SerialBoard(port) as board:
        for model in models:  # one board serves one job after another
            over_serial = board.run_model(model, invokes=2, print_output=True)
            local = run_model(core, m4_firmware.elf, model, invokes=2, print_output=True)
            assert over_serial.invoke_ticks == local.invoke_ticks
            assert over_serial.arena_used_bytes == local.arena_used_bytes
            assert over_serial.output == local.output
