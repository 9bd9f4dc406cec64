"""Profile a list of OpSpecs into a device's LUT: resumable, one row per op, fixed costs first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from lut.opspec import OpSpec
from lut.predictor import FixedCosts, io_megabytes
from lut.store import Device, LutStore
from profilers.base import PROFILER_VERSION, ProfilerBackend

# Sizes of the `add` probes that fit the per-call overhead: from a few KB to ~10 MB of I/O,
# the range the micro-models of the built-in spaces span.
OVERHEAD_PROBES = ((8, 8, 8), (16, 28, 28), (32, 56, 56), (64, 112, 112), (96, 112, 112))
CHAIN_LENGTH = 8
CHAIN_PROBE = (16, 28)  # channels, size of the depthwise 1x1 conv chained to time block boundaries

ProgressFn = Callable[[OpSpec, int, int], None]


@dataclass
class ProfileReport:
    device: Device
    total: int
    measured: list[OpSpec] = field(default_factory=list)
    skipped: int = 0
    fixed_costs_measured: bool = False


def measure_fixed_costs(
    backend: ProfilerBackend, *, drift_reference: bool | None = None
) -> FixedCosts:
    """Per-call overhead: whole runs of `add` models from ~4 KB to ~10 MB of I/O give a + b·MB
    (the smallest is an almost empty model). Between-block cost: a chain of depthwise 1x1 convs
    against the op alone (adds would be folded together by graph optimisers)."""
    import numpy as np

    from profilers.export import op_model

    reference_ms = None
    if drift_reference is None:
        drift_reference = backend.protocol.drift_reference
    backend.use_drift_reference(None)
    if drift_reference:  # a new LUT's unit: the reference's latency now
        reference_ms = backend.measure_drift_reference()
        backend.use_drift_reference(reference_ms)
    probes = [
        OpSpec(op="add", in_channels=c, out_channels=c, height=h, width=w, activation="none")
        for c, h, w in OVERHEAD_PROBES
    ]
    sizes = np.array([io_megabytes(p) for p in probes])
    times = np.array(
        [backend.measure_module(*op_model(p), cache_key=p.key).median_ms for p in probes]
    )
    # The slope over all probes, weighted by relative error, is the cost per MB of I/O.
    slope, _ = np.polyfit(sizes, times, 1, w=1.0 / times)
    slope = max(float(slope), 0.0)
    fixed = FixedCosts(
        call_overhead_ms=max(float(times[0]) - slope * float(sizes[0]), 0.0),
        per_mb_ms=slope,
        reference_ms=reference_ms,
    )
    return replace(fixed, between_blocks_ms=_between_blocks_ms(backend, fixed))


def _between_blocks_ms(backend: ProfilerBackend, fixed: FixedCosts) -> float:
    """(chain − one call's overhead − k · the op's own cost) / k, the op's own cost being its
    LUT entry less what the entry holds beyond the op."""
    import torch.nn as nn

    from search.spaces.blocks import build_op, example_input

    channels, size = CHAIN_PROBE
    probe = OpSpec(
        op="conv",
        in_channels=channels,
        out_channels=channels,
        height=size,
        width=size,
        kernel=1,
        groups=channels,
        activation="none",
    )
    entry = backend.measure_op(probe)
    own = entry.median_ms - fixed.entry_overhead_ms(probe, entry)
    chain = nn.Sequential(*(build_op(probe) for _ in range(CHAIN_LENGTH))).eval()
    key = f"chain{CHAIN_LENGTH}-{probe.key}"
    chain_ms = backend.measure_module(chain, example_input(probe), cache_key=key).median_ms
    network = chain_ms - fixed.overhead_ms(io_megabytes(probe))
    return max((network - CHAIN_LENGTH * own) / CHAIN_LENGTH, 0.0)


def use_lut_drift_reference(backend: ProfilerBackend, device: Device) -> None:
    """Measure in the unit of `device`'s LUT: paired with its drift reference if it has one
    (a LUT's choice is made when its fixed costs are measured; later measurements follow it)."""
    fixed = device.fixed_costs
    reference_ms = fixed.reference_ms if fixed else None
    if backend.protocol.drift_reference and fixed is not None and reference_ms is None:
        raise ValueError(
            f"the LUT of device {device.name!r} was measured without a drift reference; "
            "leave out --drift-reference, or measure the whole LUT again with --force"
        )
    if fixed is not None:
        backend.use_drift_reference(reference_ms)


def profile_specs(
    store: LutStore,
    backend: ProfilerBackend,
    device_name: str,
    specs: Sequence[OpSpec],
    *,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_measured: ProgressFn | None = None,
) -> ProfileReport:
    """Measure every spec the device's LUT lacks (all of them with `force`), one committed row
    per op, so an interrupted run loses at most the op in flight and a rerun resumes."""
    from profilers.in_network import check_one_timing

    check_one_timing(store, device_name, None)
    device = store.register_device(device_name, backend.fingerprint())
    report = ProfileReport(device=device, total=0)
    if device.fixed_costs is None or force:
        store.set_fixed_costs(device, measure_fixed_costs(backend))
        report.fixed_costs_measured = True
    else:
        use_lut_drift_reference(backend, device)
    todo = store.missing(device, specs)
    if force:
        todo = [s for s in {s.key: s for s in specs}.values() if not s.is_identity]
    report.total = len(todo)
    report.skipped = len({s.key for s in specs if not s.is_identity}) - len(todo)
    if on_start:
        on_start(len(todo))
    for index, spec in enumerate(todo, start=1):
        measurement = backend.measure_op(spec)
        store.add_measurement(
            device, spec, measurement, profiler_version=PROFILER_VERSION, replace=force
        )
        report.measured.append(spec)
        if on_measured:
            on_measured(spec, index, len(todo))
    report.device = store.device(device.id)
    return report
