"""Where the MCU build finds its parts: the offline TFLM kit (HWNAS_TFLM_KIT), extracted sources
(HWNAS_TFLM_SOURCES), the Arm GNU toolchain and QEMU, and the cores the firmware is built for."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KIT = REPO_ROOT.parent / "shared" / "vendor" / "tflm"
HOST_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-size", "make", "patch")
EMULATOR = "qemu-system-arm"


@dataclass(frozen=True)
class Core:
    """One Cortex-M core: the compiler's name for it, the QEMU board that emulates it, the
    SysTick clock of that board (instructions per tick under `-icount shift=0`), where the
    board's PSRAM or DDR is (16 MiB of it hold the firmware's job and tensor arena), and the part
    it stands for: default clock, SRAM and flash (an STM32F4-class M4, an STM32F7-class M7, and
    an Alif Ensemble E7's high-performance M55 at 400 MHz with its 1 MiB DTCM as SRAM and its
    5.5 MiB MRAM as flash). The rest says how the firmware is built for the board: TFLM's
    target (`cortex_m_generic` builds hard-float with MVE, `cortex_m_qemu` soft-float without
    it), the linker script and board files in `firmware/`, and whether the serial build's
    UART driver (the mps2 boards' UART0) fits the board."""

    name: str
    cpu: str
    board: str
    instructions_per_tick: float
    psram_address: int
    clock_mhz: float
    sram_bytes: int
    flash_bytes: int
    tflm_target: str = "cortex_m_qemu"
    linker_script: str = "mps2.ld"
    board_sources: tuple[str, ...] = ()
    serial_build: bool = True
    arena_kernels: str = (
        "dsp"  # whose scratch buffers the arena model follows (deploy.tflm_kernels)
    )


CORES = {
    "m4": Core("m4", "cortex-m4", "mps2-an386", 40, 0x21000000, 100.0, 256 * 1024, 1024 * 1024),
    "m7": Core("m7", "cortex-m7", "mps2-an500", 40, 0x60000000, 216.0, 512 * 1024, 2048 * 1024),
    # mps3-an547: SYSCLK 32 MHz (31.25 instructions a tick); DDR at 0x60000000; code in SRAM 2
    "m55": Core(
        "m55",
        "cortex-m55",
        "mps3-an547",
        31.25,
        0x60000000,
        400.0,
        1024 * 1024,
        5632 * 1024,
        tflm_target="cortex_m_generic",
        linker_script="mps3.ld",
        board_sources=("mps3_an547.c",),
        serial_build=False,
        arena_kernels="mve",
    ),
}


def get_core(name: str) -> Core:
    if name not in CORES:
        raise ValueError(f"unknown MCU core {name!r}; valid: {', '.join(CORES)}")
    return CORES[name]


def arena_kernels_of(cpu: str) -> str:
    """The kernel set the arena model follows for a device fingerprint's `core` (its cpu name):
    `mve` for a core built with Helium, else `dsp`."""
    for core in CORES.values():
        if core.cpu == cpu:
            return core.arena_kernels
    return "dsp"


def check_serial_build(core: Core) -> None:
    """ValueError if the firmware's serial build cannot drive the core's board."""
    if not core.serial_build:
        raise ValueError(
            f"no serial build for {core.name}: firmware/serial.c drives the mps2 boards' UART0, "
            f"not {core.board}'s"
        )


def kit_dir(environ: Mapping[str, str] | None = None) -> Path:
    """HWNAS_TFLM_KIT, or the kit beside the repository (`../shared/vendor/tflm`)."""
    env = os.environ if environ is None else environ
    return Path(env.get("HWNAS_TFLM_KIT") or DEFAULT_KIT).expanduser()


def sources_override(environ: Mapping[str, str] | None = None) -> Path | None:
    """HWNAS_TFLM_SOURCES: a folder holding an already extracted `tflite-micro/` (from the kit's
    setup.sh), used instead of extracting the kit into the cache."""
    env = os.environ if environ is None else environ
    value = env.get("HWNAS_TFLM_SOURCES")
    return Path(value).expanduser() if value else None


def unavailable_reason() -> str | None:
    """None if the firmware can be built and run here, else one line saying what is missing."""
    missing = [tool for tool in (*HOST_TOOLS, EMULATOR) if shutil.which(tool) is None]
    if missing:
        return (
            f"missing {', '.join(missing)} (apt-get install gcc-arm-none-eabi "
            "libnewlib-arm-none-eabi qemu-system-arm make patch)"
        )
    override = sources_override()
    if override is not None:
        if not (override / "tflite-micro").is_dir():
            return f"HWNAS_TFLM_SOURCES={override} has no tflite-micro/ folder"
        return None
    if not (kit_dir() / "setup.sh").is_file():
        return f"no TFLM kit at {kit_dir()} (set HWNAS_TFLM_KIT or HWNAS_TFLM_SOURCES)"
    return None


@lru_cache(maxsize=1)
def compiler_version() -> str:
    """The first line of `arm-none-eabi-gcc --version`, e.g. '... 12.2.1 20221205'."""
    out = subprocess.run(
        ["arm-none-eabi-gcc", "--version"], capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()[0].strip()


@lru_cache(maxsize=1)
def emulator_version() -> str:
    out = subprocess.run([EMULATOR, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0].strip()


def tflm_commit(environ: Mapping[str, str] | None = None) -> str:
    """The TFLM commit the kit pins (read from its tarball's name), or the override's folder."""
    override = sources_override(environ)
    if override is not None:
        return f"sources at {override}"
    for tarball in sorted((kit_dir(environ) / "tarballs").glob("tflite-micro-*.tar.gz")):
        found = re.fullmatch(r"tflite-micro-([0-9a-f]+)\.tar\.gz", tarball.name)
        if found:
            return found.group(1)
    raise ValueError(f"no tflite-micro tarball in the TFLM kit at {kit_dir(environ)}")
