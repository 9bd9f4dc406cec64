"""The command-line options of the mcu backend (`--mcu-core`, `--clock-mhz`), shared by
`hwnas profile` and `hwnas measure`."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.common import UsageProblem


def add_mcu_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mcu-core",
        default=None,
        help="mcu backend: the Cortex-M core to emulate, m4, m7 or m55 (default: the device name "
        "if it names a core, else m4)",
    )
    parser.add_argument(
        "--clock-mhz",
        type=float,
        default=None,
        help="mcu backend: the clock that turns instructions into milliseconds (default: the "
        "core's, 100 for m4); the result is an emulator estimate",
    )


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """The mcu backend's keyword arguments from the command line ({} for other backends)."""
    from profilers.mcu.toolchain import CORES

    given = args.mcu_core is not None or args.clock_mhz is not None
    if args.backend != "mcu":
        if given:
            raise UsageProblem("--mcu-core and --clock-mhz go with --backend mcu")
        return {}
    if args.clock_mhz is not None and args.clock_mhz <= 0:
        raise UsageProblem("--clock-mhz must be greater than 0")
    core = args.mcu_core or (args.device if getattr(args, "device", None) in CORES else "m4")
    if core not in CORES:
        raise UsageProblem(f"unknown --mcu-core {core!r}; valid: {', '.join(CORES)}")
    return {"device": core, "clock_mhz": args.clock_mhz}
