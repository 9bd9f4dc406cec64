"""Runs the profiling firmware on QEMU's Cortex-M boards with `-icount shift=0` (virtual time is
the instruction count, so every run of a model gives the same counts), the job placed in the
board's PSRAM by QEMU's generic loader and the report read from semihosting."""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from profilers.mcu.protocol import (
    FirmwareError,
    FirmwareReport,
    job_image,
    parse_report,
)
from profilers.mcu.toolchain import EMULATOR, Core

RUN_TIMEOUT_S = 600


def emulator_command(core: Core, elf: Path, job: Path | None = None) -> list[str]:
    """QEMU's command line for `elf` on the core's board, with `job` loaded into its PSRAM."""
    loader = (
        []
        if job is None
        else ["-device", f"loader,file={job},addr={core.psram_address:#x},force-raw=on"]
    )
    return [
        EMULATOR,
        "-M", core.board,
        "-nographic", "-monitor", "none", "-serial", "none",
        "-semihosting-config", "enable=on,target=native",
        "-icount", "shift=0",
        "-kernel", str(elf),
        *loader,
    ]  # fmt: skip


def run_model(
    core: Core, elf: Path, model: bytes, *, invokes: int = 2, print_output: bool = False
) -> FirmwareReport:
    """Run `model` (.tflite bytes) `invokes` times on the emulated board; FirmwareError with the
    firmware's own words if it could not."""
    with tempfile.TemporaryDirectory(prefix="hwnas-mcu-") as scratch:
        job = Path(scratch) / "job.bin"
        job.write_bytes(job_image(model, invokes=invokes, print_output=print_output))
        try:
            done = subprocess.run(
                emulator_command(core, elf, job),
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise FirmwareError(f"the emulator ran past {RUN_TIMEOUT_S} s") from None
    return parse_report(done.stdout + done.stderr)


def run_program(core: Core, elf: Path) -> str:
    """What a program (no job) printed over semihosting; RuntimeError if it did not exit 0."""
    try:
        done = subprocess.run(
            emulator_command(core, elf), capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise FirmwareError(f"the emulator ran past {RUN_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise FirmwareError(f"{elf.name} exited with {done.returncode}: {done.stdout.strip()}")
    return done.stdout


@contextlib.contextmanager
def emulated_serial_board(core: Core, elf: Path) -> Iterator[str]:
    """QEMU running `elf` (the serial build) with its UART on a pseudo-terminal; yields the pty's
    path for `SerialBoard`, and stops QEMU afterwards."""
    command = [
        EMULATOR, "-M", core.board, "-nographic", "-monitor", "none", "-serial", "pty",
        "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
        "-kernel", str(elf),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # "char device redirected to /dev/pts/N (label ...)"
        found = re.search(r"(/dev/pts/\d+)", first)
        if found is None:
            raise FirmwareError(f"QEMU gave no pseudo-terminal: {first.strip() or 'no output'}")
        yield found.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
