"""The run record at the top of every benchmark result: the commit, date, command line and
machine of the run that wrote it, so a file in `results/` says which code it measured.

Kept apart from `_common` (which imports torch and the search stack) so that light benchmarks
such as `service_load` can record their runs too."""

from __future__ import annotations

import functools
import os
import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# When the benchmark started, not when it first wrote a result (long runs rewrite as they go).
STARTED = datetime.now(UTC)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _machine() -> str:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from profilers.base import cpu_model

    cpus = os.cpu_count()
    text = f"{cpu_model()}, {cpus} CPUs, {platform.system()} {platform.machine()}"
    if hasattr(os, "sched_getaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        if cpus and len(allowed) < cpus:  # pinned (taskset): say where it ran
            text += f", pinned to CPUs {','.join(map(str, allowed))}"
    return f"{text}, Python {platform.python_version()}"


@functools.cache
def run_record() -> dict[str, Any]:
    """`commit` (HEAD; None outside a git checkout), `dirty` (whether tracked files other than
    `benchmarks/results/` differ from it, so the commit alone does not say what ran), `date` (UTC,
    when the run started), `command` (the command line as given) and `machine`."""
    status = _git(
        "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results"
    )
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": None if status is None else bool(status),
        "date": STARTED.isoformat(timespec="seconds"),
        "command": "python " + shlex.join(sys.argv),
        "machine": _machine(),
    }


def with_run(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` with the run record as its first key."""
    return {"run": run_record(), **payload}


def run_markdown() -> str:
    """The run record as the last line of a result's markdown."""
    r = run_record()
    commit = (r["commit"] or "unknown")[:12] + (" (dirty)" if r["dirty"] else "")
    return f"Run: commit {commit} ({r['date'][:10]}), {r['machine']}: `{r['command']}`"
