"""The Cortex-M7 firmware for real on QEMU's mps2-an500, whose PSRAM (the firmware's job and
tensor arena) sits at another address than the M4 board's: the same int8 micro-model runs on
both boards, with repeatable counts on each."""

from __future__ import annotations

from pathlib import Path

import pytest

from lut.opspec import OpSpec
from profilers.backends.mcu_backend import McuBackend
from profilers.mcu.build import Firmware

MBCONV = OpSpec(
    op="mbconv", in_channels=8, out_channels=16, height=8, width=8, kernel=3, expansion=3.0
)


def test_an_op_runs_on_the_emulated_m7_as_on_the_m4(
    m4_firmware: Firmware, m7_firmware: Firmware, tmp_path: Path
) -> None:
    m7 = McuBackend(device="m7", cache_dir=tmp_path)  # one conversion for both boards
    m4 = McuBackend(device="m4", cache_dir=tmp_path)
    on_m7, again, on_m4 = m7.measure_op(MBCONV), m7.measure_op(MBCONV), m4.measure_op(MBCONV)

    assert m7_firmware.fingerprint["core"] == "cortex-m7"
    assert m7.fingerprint()["emulator"].endswith("mps2-an500, -icount shift=0")
    assert again.extra["converted"] is False
    assert on_m7.extra["instructions"] == again.extra["instructions"] > 0
    assert on_m7.extra["op_instructions"] == again.extra["op_instructions"]
    # the same 32-bit structures and planner: the arena does not depend on the core
    assert on_m7.extra["arena_bytes"] == on_m4.extra["arena_bytes"]
    # instructions, not cycles: the cores run nearly the same code, at their declared clocks
    ratio = on_m7.extra["instructions"] / on_m4.extra["instructions"]
    assert 0.8 < ratio < 1.25
    assert on_m7.median_ms == pytest.approx(on_m7.extra["instructions"] / (216.0 * 1e3))
