"""`hwnas agent`: run a profiler agent on the target, measuring for a hwnas server — the same
agent as `hwnas-agent` (profilers/agent/main.py), with the full install's backends too."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.common import EnvironmentProblem, UsageProblem


def register(sub: Any) -> None:
    from profilers.agent.main import DESCRIPTION, add_arguments

    parser = sub.add_parser(
        "agent",
        help="run a profiler agent on this machine for a hwnas server",
        description=DESCRIPTION,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from profilers.agent.main import StartError, UsageError, log, run_agent

    try:
        return run_agent(args, log)
    except UsageError as exc:
        raise UsageProblem(str(exc)) from None
    except StartError as exc:
        raise EnvironmentProblem(str(exc)) from None
