"""A board running the serial build of the profiling firmware, driven over its serial line with
pyserial: wait for `hwnas ready`, send a job (header + model), read the report lines until
`hwnas done`. The same code talks to QEMU's `-serial pty` and to a real board's USB serial port."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from profilers.mcu.protocol import FirmwareError, FirmwareReport, job_image, parse_report

READY = "hwnas ready"
DONE = "hwnas done"
READY_WAIT_S = 3.0


class SerialBoard:
    """One open serial line to a board. `timeout_s` bounds each wait for the board's lines."""

    def __init__(self, port: str, *, baudrate: int = 115200, timeout_s: float = 120.0) -> None:
        import serial

        self.timeout_s = timeout_s
        self.line = serial.Serial(port, baudrate=baudrate, timeout=0.5)
        self._ready = False

    def close(self) -> None:
        self.line.close()

    def __enter__(self) -> SerialBoard:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def run_model(
        self, model: bytes, *, invokes: int = 2, print_output: bool = False
    ) -> FirmwareReport:
        """Send `model` as one job and read its report; FirmwareError with the board's words."""
        if not self._ready:  # a board that booted before the port was opened said it already
            with contextlib.suppress(FirmwareError):
                self._read_until(READY, within_s=READY_WAIT_S)
        self.line.write(job_image(model, invokes=invokes, print_output=print_output))
        self.line.flush()
        text = self._read_until(DONE)
        self._ready = False
        return parse_report(text)

    def _read_until(self, marker: str, *, within_s: float | None = None) -> str:
        """Lines up to and including the first one starting with `marker`."""
        wait_s = self.timeout_s if within_s is None else within_s
        deadline = time.monotonic() + wait_s
        lines: list[str] = []
        pending = b""
        while time.monotonic() < deadline:
            pending += self.line.read(4096)
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                text = raw.decode("ascii", errors="replace").strip()
                lines.append(text)
                if text.startswith(marker):
                    return "\n".join(lines)
                if text.startswith("hwnas error"):
                    raise FirmwareError("board: " + text.removeprefix("hwnas error ").strip())
        raise FirmwareError(f"no {marker!r} from the board within {wait_s:.0f} s")
