"""Helpers shared by the sub-commands: settings, the store, architecture input, output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from lut.predictor import FixedCosts
from lut.store import OPERATOR_TENANT, DatabaseUnavailable, DeviceOwned, LutStore
from service.config import Settings, load_settings

stderr = Console(stderr=True, highlight=False)
stdout = Console(highlight=False)


class UsageProblem(Exception):
    """Bad input: exit code 2, one line."""


class EnvironmentProblem(Exception):
    """The environment cannot do it (database unreachable, runtime missing): exit code 1."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's input errors into one-line CLI errors."""
    from lut.exchange import InvalidLutFile
    from lut.predictor import MissingEntries
    from lut.store import DeviceNotFound
    from profilers.base import BackendUnavailable

    try:
        yield
    except DeviceOwned as exc:  # the operator may know who owns it
        raise UsageProblem(
            f"device {exc.name!r} belongs to tenant {exc.owner!r}: pass --tenant {exc.owner} "
            "to write into its LUTs for that tenant, or use another device name"
        ) from None
    except (ValueError, DeviceNotFound, MissingEntries, InvalidLutFile) as exc:
        raise UsageProblem(str(exc)) from None
    except (DatabaseUnavailable, BackendUnavailable) as exc:
        raise EnvironmentProblem(str(exc)) from None


def add_tenant_argument(parser: argparse.ArgumentParser) -> None:
    """--tenant: who a device this command creates belongs to (the command line is the
    operator's: its devices are the admin key's tenant's unless told otherwise)."""
    parser.add_argument(
        "--tenant",
        default=OPERATOR_TENANT,
        help="the tenant a new device belongs to, whose agents alone may then register under "
        f"its name (default {OPERATOR_TENANT}, the admin key's); a device of another tenant "
        "is refused unless this names it",
    )


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def settings() -> Settings:
    """The settings, or one line naming the bad `HWNAS_*` value (exit 1)."""
    from pydantic import ValidationError

    try:
        return load_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:  # the whole settings' check: insecure outside development
            raise EnvironmentProblem(message) from None
        where = "HWNAS_" + "_".join(str(p) for p in first["loc"]).upper()
        raise EnvironmentProblem(f"bad setting {where}: {message}") from None


def open_store() -> LutStore:
    try:
        return LutStore(settings().database_url)
    except DatabaseUnavailable as exc:
        raise EnvironmentProblem(str(exc)) from None


def add_arch_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "archs",
        nargs="*",
        metavar="ARCH",
        help="architecture strings (SPACE[@PARAMS]:CHOICE-CHOICE-...) or paths to arch.json files",
    )
    parser.add_argument(
        "-f", "--file", type=Path, help="read architectures from FILE, one per line ('-': stdin)"
    )


def read_arch_inputs(args: argparse.Namespace) -> list[str]:
    items = list(args.archs)
    if args.file is not None:
        if str(args.file) == "-":
            text = sys.stdin.read()
        else:
            try:
                text = args.file.read_text()
            except OSError as exc:
                raise UsageProblem(f"cannot read {args.file}: {exc.strerror}") from None
        items += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not items:
        raise UsageProblem("no architecture given: pass ARCH arguments or -f FILE")
    return items


def print_json_line(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, sort_keys=False) + "\n")
    sys.stdout.flush()


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=stderr,
        transient=False,
        redirect_stdout=False,
        redirect_stderr=False,
    )


def choice_list(names: list[str]) -> str:
    return ", ".join(names)


def reference_note(fixed: FixedCosts) -> str:
    """How fixed costs print their drift reference, if they have one."""
    if fixed.reference_ms is None:
        return ""
    return f"; drift reference {fixed.reference_ms * 1000:.1f} µs (entries in its unit)"


def make_backend(
    name: str,
    threads: int,
    quick: bool = False,
    *,
    drift_reference: bool = False,
    options: dict[str, Any] | None = None,
) -> Any:
    from dataclasses import replace

    from profilers.base import backend_names, create_backend
    from profilers.protocol import QUICK, MeasureProtocol

    if name not in backend_names():
        raise UsageProblem(f"unknown backend {name!r}; valid: {choice_list(backend_names())}")
    if threads < 1:
        raise UsageProblem("--threads must be at least 1")
    protocol = replace(QUICK if quick else MeasureProtocol(), drift_reference=drift_reference)
    with user_errors():
        return create_backend(
            name,
            threads=threads,
            cache_dir=settings().cache_dir,
            protocol=protocol,
            **(options or {}),
        )


def progress_steps(
    progress: Any, unit: str, status: Callable[[Any], str]
) -> tuple[Callable[[int], None], Callable[[Any, int, int], None]]:
    """A task that shows the fixed costs until the work starts, then counts `unit`s: the
    `on_start` and per-step callbacks of the profilers."""
    task = progress.add_task("fixed costs", total=None, status="")

    def started(total: int) -> None:
        progress.update(task, description=unit, total=total, completed=0)

    def step(item: Any, index: int, total: int) -> None:
        progress.update(task, completed=index, status=status(item))

    return started, step
