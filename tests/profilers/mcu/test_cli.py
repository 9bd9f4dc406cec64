"""`hwnas measure --backend mcu` as a user runs it: a real process converting a network to int8
and running it on the emulated Cortex-M4 board; bad options exit with code 2."""

from __future__ import annotations

import json
from pathlib import Path

from profilers.mcu.build import Firmware
from tests.service.fixtures import hwnas

ARCH = "fbnet-tiny:ir_k3_e1-ir_k3_e3-skip-ir_k3_e1-skip-ir_k3_e1-skip-ir_k3_e1"


def test_measure_prints_the_boards_counts_as_json(m4_firmware: Firmware, tmp_path: Path) -> None:
    done = hwnas(tmp_path, "measure", "--backend", "mcu", ARCH, "--clock-mhz", "50", "--json")
    row = json.loads(done.stdout.splitlines()[-1])
    assert row["instructions"] > 0 and row["arena_bytes"] > 0 and row["flash_bytes"] > 0
    assert row["latency_ms"] == row["instructions"] / 50e3
    assert "emulator estimate" in row["estimate"]


def test_mcu_options_with_another_backend_or_a_bad_clock_exit_2(tmp_path: Path) -> None:
    other = hwnas(tmp_path, "measure", "--backend", "torch", ARCH, "--clock-mhz", "50", check=False)
    assert other.returncode == 2 and "--backend mcu" in other.stderr
    assert "Traceback" not in other.stderr
    bad = hwnas(tmp_path, "measure", "--backend", "mcu", ARCH, "--clock-mhz", "0", check=False)
    assert bad.returncode == 2 and "--clock-mhz" in bad.stderr
