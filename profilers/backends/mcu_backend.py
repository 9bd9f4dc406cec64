"""MCU backend: each OpSpec (or network) converted to a full-integer int8 TFLite model (the
`tflite-int8` exporter, calibrated on fixed random images) and run by the profiling firmware
(TFLite Micro + CMSIS-NN) on QEMU's Cortex-M board. Counts are instructions, turned into
milliseconds with a declared clock: an emulator estimate, not a board's cycles."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from lut.measurement import Measurement
from lut.predictor import FixedCosts
from profilers.backends.module_timing import ModuleTimingBackend
from profilers.base import PROFILER_VERSION, register_backend
from profilers.export import ensure_cached
from profilers.fixed_costs import overhead_probes
from profilers.mcu import toolchain
from profilers.mcu.build import Firmware, ensure_firmware
from profilers.mcu.emulator import run_model
from profilers.mcu.protocol import FirmwareReport

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from profilers.mcu.serial_link import SerialBoard

CALIBRATION_IMAGES = 8
ESTIMATE = "emulator estimate: instructions / declared clock"


@register_backend("mcu")
class McuBackend(ModuleTimingBackend):
    """`device` names the core (m4, m7, m55); `clock_mhz` (default: the core's) turns
    instructions into milliseconds. Every run is deterministic, so `invokes` (default 2) only
    checks that: the first Invoke() is the warm-up, the others the samples. `port` (a serial
    device) runs every model on a board running the serial build of the firmware instead of on
    QEMU; the firmware's fingerprint is then the serial build's, the one flashed on the board."""

    layout = "NHWC"
    default_device = "m4"
    opspec_dtype: ClassVar[str] = "int8"

    def __init__(
        self,
        *,
        clock_mhz: float | None = None,
        invokes: int = 2,
        port: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs["precision"] = "int8"
        super().__init__(**kwargs)
        if self.threads != 1:
            raise ValueError(f"the mcu backend runs one thread, not {self.threads}")
        if invokes < 2:
            raise ValueError(f"invokes must be at least 2 (one warm-up), got {invokes}")
        self.core = toolchain.get_core(self.device)
        if port:
            toolchain.check_serial_build(self.core)
        self.clock_mhz = float(clock_mhz or self.core.clock_mhz)
        if self.clock_mhz <= 0:
            raise ValueError(f"clock_mhz must be > 0, got {clock_mhz}")
        self.invokes = invokes
        self.conversions = 0
        self._firmware: Firmware | None = None
        self.port = port
        self._board: SerialBoard | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("litert_torch") is None:
            return "the Python package 'litert-torch' is not installed"
        return toolchain.unavailable_reason()

    @property
    def firmware(self) -> Firmware:
        """The core's profiling firmware, built (minutes, once per fingerprint) on first use."""
        if self._firmware is None:
            transport = "serial" if self.port else "semihosting"
            self._firmware = ensure_firmware(self.core, transport=transport)
        return self._firmware

    def runtime_version(self) -> str:
        return f"TFLite Micro {toolchain.tflm_commit()} + CMSIS-NN"

    def provider(self) -> str:
        return "cmsis_nn"

    def fingerprint(self) -> dict[str, Any]:
        """The core, its declared clock, SRAM and flash, and what built and ran the firmware."""
        built = self.firmware.fingerprint
        return {
            "backend": self.name,
            "runtime_version": self.runtime_version(),
            "provider": self.provider(),
            "threads": 1,
            "precision": "int8",
            "opspec_dtype": self.opspec_dtype,
            "core": self.core.cpu,
            "clock_mhz": self.clock_mhz,
            "sram_bytes": self.core.sram_bytes,
            "flash_bytes": self.core.flash_bytes,
            "tflm_commit": built["tflm_commit"],
            "kernels": built["kernels"],
            **({"tflm_target": built["tflm_target"]} if "tflm_target" in built else {}),
            "compiler": built["compiler"],
            "firmware": built["firmware_sources"],
            **self._runner(),
            "estimate": ESTIMATE,
            "profiler_version": PROFILER_VERSION,
        }

    def _runner(self) -> dict[str, str]:
        """What runs the firmware: QEMU's board, or a board on a serial line."""
        if self.port:
            return {"bridge": "serial", "transport": "serial", "serial_port": self.port}
        return {"emulator": f"{toolchain.emulator_version()}, {self.core.board}, -icount shift=0"}

    def measure_own_fixed_costs(self) -> FixedCosts:
        """A count has no I/O transfer in it, so the `add` probes' fit (built for host runtimes'
        per-call cost) would take their real work for overhead. What an entry holds beyond its
        ops is the interpreter's own work in Invoke(): the smallest probe's count less its
        operators' counts. Nothing between blocks: a network's count is its ops' and that."""
        measured = self.measure_op(overhead_probes()[0])
        in_ops = sum(count for _, count in measured.extra["op_instructions"])
        outside = max(measured.extra["instructions"] - in_ops, 0)
        return FixedCosts(call_overhead_ms=self._ms(outside), per_mb_ms=0.0)

    def _ms(self, instructions: float) -> float:
        return instructions / (self.clock_mhz * 1e3)

    def measure_file(self, path: Path, example: Any = None) -> Measurement:
        """Run an existing int8 .tflite file (an exported network) on the emulated board."""
        return self.measurement(self.run_file(Path(path)), converted=False)

    def run_file(self, path: Path, *, print_output: bool = False) -> FirmwareReport:
        if self.port:
            return self.board.run_model(
                Path(path).read_bytes(), invokes=self.invokes, print_output=print_output
            )
        return run_model(
            self.core,
            self.firmware.elf,
            Path(path).read_bytes(),
            invokes=self.invokes,
            print_output=print_output,
        )

    @property
    def board(self) -> SerialBoard:
        """The serial line to the board, opened on first use and kept for every later job."""
        if self._board is None:
            from profilers.mcu.serial_link import SerialBoard

            self._board = SerialBoard(cast(str, self.port))
        return self._board

    def close(self) -> None:
        """Close the serial line, if one is open."""
        if self._board is not None:
            self._board.close()
            self._board = None

    def measurement(self, report: FirmwareReport, *, converted: bool) -> Measurement:
        """Milliseconds at the declared clock from the ticks of every Invoke() but the first;
        instructions (ticks × the board's instructions a tick, rounded: 31.25 on mps3-an547),
        arena and flash bytes and per-op instructions in `extra`."""
        per_tick = self.core.instructions_per_tick
        instructions = [round(ticks * per_tick) for ticks in report.invoke_ticks]
        samples = [self._ms(count) for count in instructions[1:]]
        flash = report.model_bytes + self.firmware.info["sections"]["text"]
        extra = {
            "instructions": instructions[-1],
            "arena_bytes": report.arena_used_bytes,
            "model_bytes": report.model_bytes,
            "flash_bytes": flash,
            "clock_mhz": self.clock_mhz,
            "op_instructions": [[tag, round(ticks * per_tick)] for tag, ticks in report.op_ticks],
            "estimate": ESTIMATE,
            "converted": converted,
        }
        return Measurement.from_samples(
            samples, warmup=1, peak_memory_bytes=report.arena_used_bytes, extra=extra
        )

    def int8_model(self, module: nn.Module, example: torch.Tensor, key: str) -> tuple[Path, bool]:
        """`<key>.int8.tflite` in the cache, converted now if it is not there."""
        path = self.cache_dir / f"{key}.int8.tflite"
        converted = ensure_cached(path, lambda tmp: convert_int8(module, example, tmp))
        self.conversions += converted
        return path, converted

    def _measure(self, module: nn.Module, example: torch.Tensor, key: str) -> Measurement:
        """The measurement, with the micro-model's predicted arena head and tail and its
        operators (`deploy.mcu_memory.entry_memory`): what SRAM and flash budgets compose."""
        from deploy.mcu_memory import entry_memory

        path, converted = self.int8_model(module, example, key)
        measured = self.measurement(self.run_file(path), converted=converted)
        measured.extra.update(entry_memory(path, self.core.arena_kernels))
        return measured


def convert_int8(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Full-integer TFLite with channel-last input and output, calibrated on fixed random images
    in [0, 1) shaped like `example` (the op's cost does not depend on their values)."""
    import numpy as np

    from deploy.exporters import export_tflite_int8
    from deploy.formats import ExportJob

    shape = tuple(int(d) for d in example.shape[1:])
    rng = np.random.default_rng(0)
    calibration = rng.random((CALIBRATION_IMAGES, *shape), dtype=np.float32)
    job = ExportJob(
        module=module.eval(),
        input_shape=cast("tuple[int, int, int]", shape),
        calibration=calibration,
        out_dir=path.parent,
        nhwc=True,
    )
    export_tflite_int8(job, path)
