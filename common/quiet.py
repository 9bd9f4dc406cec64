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
from dataclasses import dataclass
from typing import IO, TextIO

_TAIL_LINES = 30


@dataclass(eq=False)  # blocks are told apart by identity (`_ACTIVE.remove`)
class _Silencing:
    """What one `silenced` block redirected, and how to undo it; `undo` may run twice (an
    interrupted undo is finished by `restore_output`)."""

    saved_fds: dict[int, int]  # fd -> a copy of what it pointed to before
    streams: tuple[TextIO, TextIO]  # sys.stdout, sys.stderr before

    def undo(self) -> None:
        _flush_c_stdio()
        sys.stdout, sys.stderr = self.streams
        while self.saved_fds:
            fd, copy = next(iter(self.saved_fds.items()))
            with contextlib.suppress(OSError):
                os.dup2(copy, fd)
                os.close(copy)
            del self.saved_fds[fd]


_ACTIVE: list[_Silencing] = []


def restore_output() -> None:
    """Undo every `silenced` block still in force. A Ctrl-C that lands while a block restores
    the output can leave stderr pointing at the block's scratch file; the CLI calls this before
    it reports the interrupt, or the report is lost."""
    while _ACTIVE:
        _ACTIVE.pop().undo()


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
        state = _Silencing(_dup_std_fds(), (sys.stdout, sys.stderr))
        _ACTIVE.append(state)
        text = io.TextIOWrapper(os.fdopen(os.dup(scratch.fileno()), "wb"), line_buffering=True)
        try:
            for fd in state.saved_fds:
                os.dup2(scratch.fileno(), fd)
            sys.stdout = sys.stderr = text
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    yield
                except BaseException as exc:
                    text.flush()
                    _attach_tail(exc, scratch)
                    raise
        finally:
            with contextlib.suppress(Exception):
                text.flush()
            state.undo()
            if state in _ACTIVE:
                _ACTIVE.remove(state)
            text.close()


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
