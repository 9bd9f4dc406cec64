"""A LUT's fixed costs from a few probe models, whatever times them: the per-call overhead
(a + b·MB of I/O, from `add` models of ~4 KB to ~10 MB) and the cost between blocks (a chain of
depthwise 1x1 convs against the op alone). Light: a thin agent times the server's files of the
probes, local profiling its own conversions (`profilers.runner.measure_fixed_costs`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from lut.measurement import Measurement
from lut.opspec import OpSpec
from lut.predictor import FixedCosts, io_megabytes
from profilers.protocol import MeasureProtocol

# Sizes of the `add` probes that fit the per-call overhead: from a few KB to ~10 MB of I/O,
# the range the micro-models of the built-in spaces span.
OVERHEAD_PROBES = ((8, 8, 8), (16, 28, 28), (32, 56, 56), (64, 112, 112), (96, 112, 112))
CHAIN_LENGTH = 8
CHAIN_PROBE = (16, 28)  # channels, size of the depthwise 1x1 conv chained to time block boundaries


def overhead_probes() -> list[OpSpec]:
    return [
        OpSpec(op="add", in_channels=c, out_channels=c, height=h, width=w, activation="none")
        for c, h, w in OVERHEAD_PROBES
    ]


def chain_probe() -> OpSpec:
    channels, size = CHAIN_PROBE
    return OpSpec(
        op="conv",
        in_channels=channels,
        out_channels=channels,
        height=size,
        width=size,
        kernel=1,
        groups=channels,
        activation="none",
    )


CHAIN_NAME = f"chain{CHAIN_LENGTH}-{chain_probe().key}"  # the chain network's cache key


def probe_names() -> list[str]:
    """Every model the fixed costs time, by name: the probes' op keys and the chain's."""
    return [*(p.key for p in overhead_probes()), chain_probe().key, CHAIN_NAME]


class ProbeTimer(Protocol):
    """What measuring fixed costs needs of a profiler (a backend, or an agent's file timer)."""

    @property
    def protocol(self) -> MeasureProtocol: ...

    def use_drift_reference(self, nominal_ms: float | None) -> None: ...

    def measure_drift_reference(self) -> float: ...

    def measure_op(self, spec: OpSpec) -> Measurement:
        """The LUT entry of an op."""
        ...

    def measure_network(self, name: str) -> Measurement:
        """Whole timed runs of the probe model `name` (an add probe's key or CHAIN_NAME)."""
        ...


def measure_fixed_costs(timer: ProbeTimer, *, drift_reference: bool | None = None) -> FixedCosts:
    """Per-call overhead: whole runs of `add` models from ~4 KB to ~10 MB of I/O give a + b·MB
    (the smallest is an almost empty model). Between-block cost: a chain of depthwise 1x1 convs
    against the op alone (adds would be folded together by graph optimisers). With
    `drift_reference` (default: the timer's protocol says), the reference is timed first and
    becomes the new LUT's unit."""
    import numpy as np

    reference_ms = None
    if drift_reference is None:
        drift_reference = timer.protocol.drift_reference
    timer.use_drift_reference(None)
    if drift_reference:  # a new LUT's unit: the reference's latency now
        reference_ms = timer.measure_drift_reference()
        timer.use_drift_reference(reference_ms)
    probes = overhead_probes()
    sizes = np.array([io_megabytes(p) for p in probes])
    times = np.array([timer.measure_network(p.key).median_ms for p in probes])
    # The slope over all probes, weighted by relative error, is the cost per MB of I/O.
    slope, _ = np.polyfit(sizes, times, 1, w=1.0 / times)
    slope = max(float(slope), 0.0)
    fixed = FixedCosts(
        call_overhead_ms=max(float(times[0]) - slope * float(sizes[0]), 0.0),
        per_mb_ms=slope,
        reference_ms=reference_ms,
    )
    return replace(fixed, between_blocks_ms=_between_blocks_ms(timer, fixed))


def _between_blocks_ms(timer: ProbeTimer, fixed: FixedCosts) -> float:
    """(chain − one call's overhead − k · the op's own cost) / k, the op's own cost being its
    LUT entry less what the entry holds beyond the op."""
    probe = chain_probe()
    entry = timer.measure_op(probe)
    own = entry.median_ms - fixed.entry_overhead_ms(probe, entry)
    chain_ms = timer.measure_network(CHAIN_NAME).median_ms
    network = chain_ms - fixed.overhead_ms(io_megabytes(probe))
    return max((network - CHAIN_LENGTH * own) / CHAIN_LENGTH, 0.0)
