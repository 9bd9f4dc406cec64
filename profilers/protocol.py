"""The measuring protocol shared by every backend: warm-up, repeats until the median is known to
±2% (or a time cap), robust statistics, raw samples kept; optionally every run paired with a run
of a fixed reference model, to take out the machine's drift in speed (`drift_reference`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from typing import Any

from lut.measurement import Measurement, median_ci_rel


@dataclass(frozen=True)
class MeasureProtocol:
    warmup_runs: int = 10
    warmup_s: float = 0.05  # keep warming up at least this long (caches, frequency ramp-up)
    min_runs: int = 30
    max_runs: int = 5000
    target_ci_rel: float = 0.02  # stop once the median's ~95% CI half-width is within ±2%
    time_cap_s: float = 3.0  # ... or after this long, whichever comes first
    check_every: int = 10
    # Pair every run with a run of the backend's reference model and scale each sample by
    # (the reference's nominal latency / its latency in that pair). On a shared or virtual
    # machine whose speed changes by tens of percent within seconds, this keeps measurements
    # taken at different times comparable (the drift hits both runs of a pair alike).
    drift_reference: bool = False

    def __post_init__(self) -> None:
        if self.min_runs < 6 or self.max_runs < self.min_runs:
            raise ValueError("need 6 <= min_runs <= max_runs")
        if not 0 < self.target_ci_rel < 1:
            raise ValueError("target_ci_rel must be in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


QUICK = MeasureProtocol(
    warmup_runs=3, warmup_s=0.0, min_runs=10, target_ci_rel=0.05, time_cap_s=0.5
)


def wall_timer(run_once: Callable[[], object]) -> Callable[[], float]:
    """Wrap a synchronous call into a timer returning milliseconds."""

    def timed() -> float:
        start = time.perf_counter_ns()
        run_once()
        return (time.perf_counter_ns() - start) / 1e6

    return timed


@dataclass(frozen=True)
class DriftReference:
    """A reference model's timed run and its nominal latency (ms), the unit that referenced
    measurements are expressed in: a sample is `latency · nominal_ms / reference latency`."""

    timed_run: Callable[[], float]
    nominal_ms: float

    def __post_init__(self) -> None:
        if not self.nominal_ms > 0:
            raise ValueError(
                f"a drift reference needs a nominal latency > 0, not {self.nominal_ms}"
            )


def time_runs(
    timed_run: Callable[[], float],
    protocol: MeasureProtocol,
    *,
    peak_memory_bytes: int | None = None,
    extra: dict[str, Any] | None = None,
    reference: DriftReference | None = None,
) -> Measurement:
    """Run `timed_run` (returns one latency in ms) under the protocol; return its statistics.

    With a `reference`, every run is followed by a reference run and each sample is scaled by
    `nominal_ms / reference sample`; the raw samples and the reference's are kept in `extra`.
    """
    paired = _Paired(timed_run, reference) if reference else None
    run = paired or timed_run
    warmup = 0
    start = time.perf_counter()
    while warmup < protocol.warmup_runs or time.perf_counter() - start < protocol.warmup_s:
        run()
        warmup += 1
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < protocol.max_runs:
        samples.append(run())
        if len(samples) < protocol.min_runs or len(samples) % protocol.check_every:
            continue
        if median_ci_rel(sorted(samples)) <= protocol.target_ci_rel:
            break
        if time.perf_counter() - start > protocol.time_cap_s:
            break
    info = {"protocol": protocol.to_dict(), **(extra or {})}
    if paired:
        info["drift_reference"] = paired.record(len(samples))
    return Measurement.from_samples(
        samples, warmup=warmup, peak_memory_bytes=peak_memory_bytes, extra=info
    )


class _Paired:
    """A timed run followed by a reference run; returns the referenced sample and keeps both
    raw latencies. Every run is paired, because the machine's speed changes from one run to the
    next: a reference taken only every few runs keeps the measured model warmer but follows the
    drift worse (docs/measuring.md, "The drift reference")."""

    def __init__(self, timed_run: Callable[[], float], reference: DriftReference) -> None:
        self.timed_run = timed_run
        self.reference = reference
        self.raw: list[float] = []
        self.ref: list[float] = []

    def __call__(self) -> float:
        latency = self.timed_run()
        reference_ms = self.reference.timed_run()
        self.raw.append(latency)
        self.ref.append(reference_ms)
        return latency * self.reference.nominal_ms / reference_ms

    def record(self, last: int) -> dict[str, Any]:
        """The last `last` pairs (the measured ones; warm-up pairs come first)."""
        return {
            "nominal_ms": self.reference.nominal_ms,
            "raw_ms": self.raw[-last:],
            "reference_ms": self.ref[-last:],
        }


def pin_to_cores(threads: int) -> list[int] | None:
    """Pin this process to `threads` CPUs (the last ones, away from interrupts on CPU 0) where the
    OS allows it. Returns the CPUs used, or None if affinity cannot be set here."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    try:
        allowed = sorted(os.sched_getaffinity(0))
        chosen = allowed[-threads:] if threads <= len(allowed) else allowed
        os.sched_setaffinity(0, chosen)
        return chosen
    except OSError:
        return None


@contextmanager
def pinned_to_cores(threads: int) -> Iterator[list[int] | None]:
    """Pin this thread to `threads` CPUs for the block and restore the previous affinity after.

    Linux applies the mask to the calling thread and to threads it creates later, so enter this
    before a runtime builds its thread pool (session / interpreter creation). Yields the CPUs used,
    or None where affinity cannot be set.
    """
    previous = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    chosen = pin_to_cores(threads)
    try:
        yield chosen
    finally:
        if previous is not None and chosen is not None:
            with suppress(OSError):
                os.sched_setaffinity(0, previous)
