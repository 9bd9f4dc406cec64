"""The `hwnas` command line. Bad input exits with code 2 and one line; environment failures
(an unreachable database, a runtime that cannot run here) with code 1 and one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from common.quiet import restore_output
from service.cli import agent as agent_cmds
from service.cli import arch as arch_cmds
from service.cli import demo as demo_cmds
from service.cli import deploy as deploy_cmds
from service.cli import devices as devices_cmds
from service.cli import lut as lut_cmds
from service.cli import profile as profile_cmds
from service.cli import search as search_cmds
from service.cli import serve as serve_cmds
from service.cli.common import EnvironmentProblem, UsageProblem

EPILOG = """\
environment:
  HWNAS_HOME           data directory (database, model cache); default: the user data dir
  HWNAS_DATABASE_URL   SQLAlchemy URL of the LUT database; default: SQLite under HWNAS_HOME,
                       e.g. postgresql+psycopg://user:pass@host/hwnas
  HWNAS_CACHE_DIR      converted-model cache; default: HWNAS_HOME/cache

example:
  hwnas profile --device laptop --backend onnxruntime --space fbnet-tiny
  hwnas arch random --space fbnet-tiny --seed 7 -n 5 > archs.txt
  hwnas predict --device laptop -f archs.txt --json
  hwnas measure --backend onnxruntime -f archs.txt --json
"""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"hwnas: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="hwnas",
        description="Hardware-aware neural architecture search: profile a device into a latency "
        "lookup table, predict and measure architectures, search under a latency budget.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="hwnas 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    profile_cmds.register(sub)
    lut_cmds.register(sub)
    devices_cmds.register(sub)
    arch_cmds.register(sub)
    search_cmds.register(sub)
    deploy_cmds.register(sub)
    serve_cmds.register(sub)
    agent_cmds.register(sub)
    demo_cmds.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UsageProblem as exc:
        return _fail(str(exc), 2)
    except EnvironmentProblem as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return _interrupted()
    except ImportError as exc:
        if not _caused_by_ctrl_c(exc):
            raise
        return _interrupted()
    except BrokenPipeError:
        return 0


def _interrupted() -> int:
    restore_output()  # a Ctrl-C inside a silenced block's restore leaves stderr redirected
    sys.stderr.write("hwnas: interrupted; everything measured so far is saved\n")
    return 130


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether a Ctrl-C is behind `exc`: a C extension (onnxruntime's, among others) whose
    import a Ctrl-C interrupts raises ImportError("initialization failed") from the
    KeyboardInterrupt, which must end the CLI as the Ctrl-C would, not with a traceback."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"hwnas: error: {message}\n")
    return code


def entry_point() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry_point()
