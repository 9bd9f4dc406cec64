"""`hwnas agent`: run a profiler agent on the target, measuring for a hwnas server."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import datetime
from typing import Any

from service.cli.common import EnvironmentProblem, UsageProblem

KEY_VARIABLE = "HWNAS_AGENT_KEY"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "agent",
        help="run a profiler agent on this machine for a hwnas server",
        description="Register this machine (its runtime fingerprint) as device NAME on the "
        "server, then measure what the server asks for — OpSpecs for a LUT, the runtime's fixed "
        "costs, exported models end to end — with the local profiler backend, and post the "
        "results. Reconnects with backoff when the server is away; Ctrl-C or SIGTERM stops "
        "it after the op in flight.",
    )
    parser.add_argument("--server", required=True, help="server URL, e.g. http://host:8000")
    parser.add_argument(
        "--key", help=f"an API key with scope agent (default: ${KEY_VARIABLE}, keeps it out of ps)"
    )
    parser.add_argument("--name", required=True, help="device name, e.g. lab-pi4")
    parser.add_argument("--backend", required=True, help="runtime: onnxruntime, litert, torch")
    parser.add_argument("--threads", type=int, default=1, help="runtime threads (default 1)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a fast, looser protocol (±5%% CI, 0.5 s cap per op) for demos and smoke tests",
    )
    parser.add_argument(
        "--drift-reference",
        action="store_true",
        help="measure a new LUT's fixed costs with a drift reference (see hwnas profile "
        "--help); ops and models of a LUT that has one are always measured with it",
    )
    parser.add_argument(
        "--poll", type=float, default=1.0, help="seconds between asking for work when idle"
    )
    parser.set_defaults(handler=run)


def _check_args(args: argparse.Namespace) -> str:
    import re

    from service.schemas.agents import NAME_PATTERN

    key = args.key or os.environ.get(KEY_VARIABLE)
    if not key:
        raise UsageProblem(f"no API key: pass --key or set {KEY_VARIABLE}")
    if not args.server.startswith(("http://", "https://")):
        raise UsageProblem(f"--server must be an http:// or https:// URL, got {args.server!r}")
    if not re.match(NAME_PATTERN, args.name):
        raise UsageProblem(
            f"bad --name {args.name!r}: 1-100 letters, digits, '_', '.', '@', '+', '-'"
        )
    if not 0.05 <= args.poll <= 60:
        raise UsageProblem("--poll must be between 0.05 and 60 seconds")
    return str(key)


def run(args: argparse.Namespace) -> int:
    from profilers.agent.client import AgentClient, AgentOptions, AgentRejected
    from service.cli.profile import make_backend

    key = _check_args(args)
    backend = make_backend(
        args.backend, args.threads, args.quick, drift_reference=args.drift_reference
    )
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log(f"{signal.Signals(signum).name}: stopping after the op in flight")
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    options = AgentOptions(server=args.server, key=key, name=args.name, poll_s=args.poll)
    client = AgentClient(options, backend, stop=stop, log=log)
    log(f"agent for device {args.name} ({args.backend}, {args.threads} thread(s)) → {args.server}")
    try:
        client.run()
    except AgentRejected as exc:
        raise EnvironmentProblem(str(exc)) from None
    log(f"stopped; measured {client.measured} op(s)")
    return 0


def log(message: str) -> None:
    sys.stderr.write(f"{datetime.now():%H:%M:%S} {message}\n")
    sys.stderr.flush()
