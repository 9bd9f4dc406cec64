"""Peak-memory tracking around a runtime's model load and first run: process RSS high-water mark
on Linux CPUs, the torch caching allocator's peak on CUDA devices."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_PROC_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")

RSS_METHOD = "linux-rss-hwm"  # VmHWM after (reset via clear_refs) minus VmRSS before
CUDA_METHOD = "torch-cuda-max-memory-allocated"
UNSUPPORTED = "unsupported"


@dataclass
class PeakMemory:
    """Filled in when the tracked block ends: bytes (None if not measurable here) and method."""

    bytes: int | None = None
    method: str = UNSUPPORTED


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+)\s+kB", _PROC_STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_rss_high_water_mark() -> bool:
    """Reset VmHWM to the current RSS (proc(5): writing 5 to clear_refs, Linux >= 4.0)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@contextmanager
def track_peak_rss() -> Iterator[PeakMemory]:
    """Peak growth of this process's resident memory during the block.

    Counts everything the process touches in the block (weights, arenas, activations, thread
    stacks), page-granular; memory freed before the block and reused inside it is not counted.
    """
    result = PeakMemory()
    before = _status_kib("VmRSS") if _reset_rss_high_water_mark() else None
    yield result
    after = _status_kib("VmHWM")
    if before is not None and after is not None:
        result.bytes = max(0, after - before) * 1024
        result.method = RSS_METHOD


@contextmanager
def track_peak_cuda(device: str) -> Iterator[PeakMemory]:
    """Peak growth of torch's CUDA allocator on `device` during the block (torch tensors only)."""
    import torch

    result = PeakMemory()
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    yield result
    torch.cuda.synchronize(device)
    result.bytes = max(0, torch.cuda.max_memory_allocated(device) - before)
    result.method = CUDA_METHOD


@contextmanager
def track_peak_memory(device: str) -> Iterator[PeakMemory]:
    """`track_peak_cuda` for CUDA devices, `track_peak_rss` otherwise."""
    tracker = track_peak_cuda(device) if device.startswith("cuda") else track_peak_rss()
    with tracker as result:
        yield result
