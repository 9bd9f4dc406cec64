"""Silence converters and runtimes that print progress bars, absl logs and warnings on stdout and
stderr, from Python and from native code alike."""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import IO

_TAIL_LINES = 30


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Send everything written to stdout/stderr inside the block to a scratch file.

    Native libraries write to file descriptors 1 and 2 directly, so those are redirected too
    (process-wide for the duration: meant for profiler processes, not for a threaded server). If
    the block raises, the last lines of what was silenced are attached to the exception as a note.
    """
    with tempfile.TemporaryFile(mode="w+b") as scratch:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = _dup_std_fds()
        text = io.TextIOWrapper(os.fdopen(os.dup(scratch.fileno()), "wb"), line_buffering=True)
        try:
            for fd in saved:
                os.dup2(scratch.fileno(), fd)
            with (
                text,
                contextlib.redirect_stdout(text),
                contextlib.redirect_stderr(text),
                warnings.catch_warnings(),
            ):
                warnings.simplefilter("ignore")
                try:
                    yield
                except BaseException as exc:
                    text.flush()
                    _attach_tail(exc, scratch)
                    raise
        finally:
            _flush_c_stdio()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


def _flush_c_stdio() -> None:
    """Native code printing through C stdio buffers it; flush now or it leaks out at exit."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


def _dup_std_fds() -> dict[int, int]:
    saved: dict[int, int] = {}
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            saved[fd] = os.dup(fd)
    return saved


def _attach_tail(exc: BaseException, scratch: IO[bytes]) -> None:
    scratch.seek(0)
    lines = scratch.read().decode(errors="replace").splitlines()[-_TAIL_LINES:]
    if lines:
        exc.add_note("output before the error:\n" + "\n".join(lines))
