"""The profiling firmware's protocol: the job the host places in the board's memory (a 16-byte
header, then the .tflite model) and the `hwnas …` lines the firmware prints back, the same over
semihosting (QEMU) and over a serial line (a board)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

JOB_MAGIC = 0x4D4E5748  # "HWNM" little-endian, as firmware/profiler_main.cc checks it
JOB_HEADER_BYTES = 16
FLAG_PRINT_OUTPUT = 1


def job_image(model: bytes, *, invokes: int, print_output: bool = False) -> bytes:
    """The bytes to place at the board's PSRAM (`Core.psram_address`), where the firmware reads
    its job: header (magic, model size, invokes, flags) + model."""
    if invokes < 1:
        raise ValueError(f"invokes must be at least 1, got {invokes}")
    flags = FLAG_PRINT_OUTPUT if print_output else 0
    return struct.pack("<4I", JOB_MAGIC, len(model), invokes, flags) + model


@dataclass(frozen=True)
class FirmwareReport:
    """What one run of the firmware printed: the arena TFLM used after AllocateTensors(), the
    SysTick ticks of every Invoke(), each operator's ticks in the last Invoke(), and the output
    tensor's bytes if asked for."""

    arena_used_bytes: int
    model_bytes: int
    invoke_ticks: tuple[int, ...]
    op_ticks: tuple[tuple[str, int], ...]
    output: bytes | None = None


class FirmwareError(RuntimeError):
    """The firmware reported an error or stopped before it finished; the message says which."""


def parse_report(text: str) -> FirmwareReport:
    """Read the firmware's `hwnas` lines (other lines are ignored); FirmwareError if it printed
    an error or never said `done 0`."""
    arena = model = -1
    invokes: list[int] = []
    ops: list[tuple[str, int]] = []
    output: bytes | None = None
    done = None
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "hwnas":
            continue
        kind, rest = words[1], words[2:]
        if kind == "error":
            raise FirmwareError("firmware: " + " ".join(rest))
        if kind == "model":
            model, arena = int(rest[0]), int(rest[2])
        elif kind == "invoke":
            invokes.append(int(rest[1]))
        elif kind == "op":
            ops.append((rest[1], int(rest[2])))
        elif kind == "output":
            output = bytes.fromhex(rest[1]) if len(rest) > 1 else b""
        elif kind == "done":
            done = int(rest[0])
    if done != 0 or arena < 0 or not invokes:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise FirmwareError(f"firmware did not finish (last lines: {tail or 'none'})")
    return FirmwareReport(arena, model, tuple(invokes), tuple(ops), output)
