"""The MCU tests' one firmware build: made once per machine under a folder every xdist worker
shares (HWNAS_MCU_DIR, default `<tmp>/hwnas-test-mcu`; the build holds a file lock), skipped
with the reason where the TFLM kit, the Arm toolchain or QEMU is missing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from profilers.mcu.build import Firmware, ensure_firmware
from profilers.mcu.toolchain import get_core, unavailable_reason


@pytest.fixture(scope="session")
def mcu_dir() -> Path:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"MCU firmware cannot be built here: {reason}")
    path = Path(os.environ.get("HWNAS_MCU_DIR") or Path(tempfile.gettempdir()) / "hwnas-test-mcu")
    os.environ["HWNAS_MCU_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def m4_firmware(mcu_dir: Path) -> Firmware:
    return ensure_firmware(get_core("m4"))


@pytest.fixture(scope="session")
def m7_firmware(mcu_dir: Path) -> Firmware:
    return ensure_firmware(get_core("m7"))


@pytest.fixture(scope="session")
def m55_firmware(mcu_dir: Path) -> Firmware:
    """The M55's own library build (TFLM's cortex_m_generic: hard float, MVE) costs minutes once
    per machine; test_cores.py's M55 test is its only user."""
    return ensure_firmware(get_core("m55"))
