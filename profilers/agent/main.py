"""`hwnas-agent` (and `hwnas agent`, which adds the full install's backends): run a profiler agent
on the target for a hwnas server. Needs numpy, httpx and the runtime it times with only."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from profilers.agent.wire import NAME_PATTERN

KEY_VARIABLE = "HWNAS_AGENT_KEY"
DESCRIPTION = (
    "Register this machine (its runtime fingerprint) as device NAME on the server, then time what "
    "the server asks for — OpSpecs for a LUT, the runtime's fixed costs, exported models end to "
    "end — and post the results. The server converts the files (ONNX, TFLite); the agent "
    "downloads each once into its cache. Reconnects with backoff when the server is away; Ctrl-C "
    "or SIGTERM stops it after the op in flight."
)


class UsageError(Exception):
    """Bad arguments (exit 2)."""


class StartError(Exception):
    """The agent cannot start or was refused for good (exit 1)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, help="server URL, e.g. http://host:8000")
    parser.add_argument(
        "--key", help=f"an API key with scope agent (default: ${KEY_VARIABLE}, keeps it out of ps)"
    )
    parser.add_argument("--name", required=True, help="device name, e.g. lab-pi4")
    parser.add_argument(
        "--backend",
        required=True,
        help="runtime: onnxruntime or litert (thin); torch or tensorrt with the full install",
    )
    parser.add_argument("--threads", type=int, default=1, help="runtime threads (default 1)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a fast, looser protocol (±5%% CI, 0.5 s cap per op) for demos and smoke tests",
    )
    parser.add_argument(
        "--drift-reference",
        action="store_true",
        help="measure a new LUT's fixed costs with a drift reference; ops and models of a LUT "
        "that has one are always measured with it",
    )
    parser.add_argument(
        "--poll", type=float, default=1.0, help="seconds between asking for work when idle"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="where downloaded model files are kept (default: $HWNAS_AGENT_CACHE, else "
        "$HWNAS_HOME/agent-cache, else ~/.cache/hwnas-agent)",
    )
    bridge = parser.add_argument_group(
        "Android through adb (--via adb --backend litert)",
        "Files are pushed to the phone and timed there by LiteRT's benchmark_model.",
    )
    bridge.add_argument(
        "--via", choices=["adb", "serial"], help="time on a device attached to this host"
    )
    bridge.add_argument("--serial", help="the device's adb serial (default: the only device)")
    bridge.add_argument("--adb", default="adb", help="the adb executable (default: adb)")
    bridge.add_argument(
        "--benchmark-binary",
        default="/data/local/tmp/benchmark_model",
        help="benchmark_model's path on the device (default: /data/local/tmp/benchmark_model)",
    )
    bridge.add_argument(
        "--cpus",
        help="taskset's hexadecimal CPU mask on the device, e.g. f0 for four big cores "
        "(default: no pinning)",
    )
    bridge.add_argument(
        "--runs-per-sample",
        type=int,
        default=10,
        help="benchmark_model runs per invocation; the invocation's median is one sample",
    )
    bridge.add_argument(
        "--op-profiling",
        action="store_true",
        help="benchmark_model's --enable_op_profiling: per-op times kept with each entry",
    )
    board = parser.add_argument_group(
        "A microcontroller on a serial line (--via serial --backend mcu, the full install)",
        "The board runs the serial build of the profiling firmware (docs/mcu.md); this host "
        "converts each op to int8 TFLite and sends it over the line.",
    )
    board.add_argument("--port", help="the board's serial device, e.g. /dev/ttyACM0")
    board.add_argument(
        "--core",
        default="m4",
        help="the board's core: m4 or m7 (default m4); with --backend mcu and no --via, the core "
        "QEMU emulates: m4, m7 or m55",
    )
    board.add_argument(
        "--clock-mhz", type=float, help="the clock counts are divided by (default: the core's)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwnas-agent", description=DESCRIPTION)
    add_arguments(parser)
    return parser


def check_args(args: argparse.Namespace) -> str:
    """The API key; UsageError for bad arguments."""
    key = args.key or os.environ.get(KEY_VARIABLE)
    if not key:
        raise UsageError(f"no API key: pass --key or set {KEY_VARIABLE}")
    if not args.server.startswith(("http://", "https://")):
        raise UsageError(f"--server must be an http:// or https:// URL, got {args.server!r}")
    if not re.match(NAME_PATTERN, args.name):
        raise UsageError(
            f"bad --name {args.name!r}: 1-100 letters, digits, '_', '.', '@', '+', '-'"
        )
    if not 0.05 <= args.poll <= 60:
        raise UsageError("--poll must be between 0.05 and 60 seconds")
    if args.threads < 1:
        raise UsageError("--threads must be at least 1")
    return str(key)


def measure_protocol(args: argparse.Namespace) -> Any:
    from profilers.protocol import QUICK, MeasureProtocol

    return replace(QUICK if args.quick else MeasureProtocol(), drift_reference=args.drift_reference)


def make_measurer(args: argparse.Namespace) -> dict[str, Any]:
    """The client's keyword arguments: a file timer and its cache for a runtime that times the
    server's files, else a full profiler backend (it must be installed)."""
    from profilers.agent.cache import FileCache, default_cache_dir
    from profilers.timers import timer_class, timer_names

    protocol = measure_protocol(args)
    cache = FileCache(args.cache or default_cache_dir())
    if getattr(args, "via", None) == "adb":
        from profilers.agent.adb import AdbDevice, BenchmarkModelTimer

        if args.backend != "litert":
            raise UsageError("--via adb times LiteRT files: use --backend litert")
        try:
            timer: Any = BenchmarkModelTimer(
                AdbDevice(args.adb, args.serial),
                binary=args.benchmark_binary,
                cpus=args.cpus,
                runs_per_sample=args.runs_per_sample,
                op_profiling=args.op_profiling,
                threads=args.threads,
                protocol=protocol,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return {"timer": timer, "cache": cache}
    if getattr(args, "via", None) == "serial":
        return {"backend": serial_backend(args, protocol)}
    if args.backend in timer_names():
        cls = timer_class(args.backend)
        reason = cls.unavailable_reason()
        if reason:
            raise StartError(f"backend {args.backend!r} cannot run here: {reason}")
        timer = cls(threads=args.threads, protocol=protocol)
        return {"timer": timer, "cache": cache}
    try:
        from common.paths import model_cache_dir
        from profilers.base import BackendUnavailable, create_backend
    except ImportError:
        raise UsageError(
            f"unknown backend {args.backend!r}; this agent times {', '.join(timer_names())}"
        ) from None
    core = emulated_core(args) if args.backend == "mcu" else {}
    try:
        backend = create_backend(
            args.backend,
            threads=args.threads,
            cache_dir=model_cache_dir(),
            protocol=protocol,
            **core,
        )
    except (BackendUnavailable, ValueError) as exc:
        raise StartError(str(exc)) from None
    return {"backend": backend}


def emulated_core(args: argparse.Namespace) -> dict[str, Any]:
    """The mcu backend's core and clock from `--core` and `--clock-mhz`; UsageError for a core
    the backend does not know."""
    from profilers.mcu.toolchain import CORES

    if args.core not in CORES:
        raise UsageError(f"unknown --core {args.core!r}; valid: {', '.join(CORES)}")
    return {"device": args.core, "clock_mhz": args.clock_mhz}


def serial_backend(args: argparse.Namespace, protocol: Any) -> Any:
    """The mcu backend with its models sent to the board on `--port`."""
    if args.backend != "mcu":
        raise UsageError("--via serial drives a microcontroller: use --backend mcu")
    if not args.port:
        raise UsageError("--via serial needs --port, the board's serial device")
    if not Path(args.port).exists():
        raise UsageError(f"--port {args.port}: no such serial device")
    try:
        from common.paths import model_cache_dir
        from profilers.base import BackendUnavailable, create_backend
    except ImportError:
        raise UsageError("--via serial needs the full install (pip install hwnas)") from None
    try:
        return create_backend(
            "mcu",
            threads=args.threads,
            cache_dir=model_cache_dir(),
            protocol=protocol,
            device=args.core,
            clock_mhz=args.clock_mhz,
            port=args.port,
        )
    except BackendUnavailable as exc:
        raise StartError(str(exc)) from None
    except ValueError as exc:  # an unknown core, a clock <= 0
        raise UsageError(str(exc)) from None


def run_agent(args: argparse.Namespace, log: Any) -> int:
    """Run until SIGINT/SIGTERM; StartError when the server refuses the agent."""
    from profilers.agent.client import AgentClient, AgentOptions, AgentRejected

    key = check_args(args)
    measurer = make_measurer(args)
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log(f"{signal.Signals(signum).name}: stopping after the op in flight")
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    options = AgentOptions(server=args.server, key=key, name=args.name, poll_s=args.poll)
    client = AgentClient(options, stop=stop, log=log, **measurer)
    log(f"agent for device {args.name} ({args.backend}, {args.threads} thread(s)) → {args.server}")
    try:
        client.run()
    except AgentRejected as exc:
        raise StartError(str(exc)) from None
    downloads = client.cache.downloads if client.cache is not None else 0
    log(f"stopped; measured {client.measured} op(s), downloaded {downloads} file(s)")
    return 0


def log(message: str) -> None:
    sys.stderr.write(f"{datetime.now():%H:%M:%S} {message}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run_agent(args, log)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"hwnas-agent: error: {exc}\n")
        return 2
    except StartError as exc:
        sys.stderr.write(f"hwnas-agent: error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
