"""Profile a list of OpSpecs into a device's LUT: resumable, one row per op, fixed costs first."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lut.measurement import Measurement
from lut.opspec import OpSpec
from lut.predictor import FixedCosts
from lut.store import OPERATOR_TENANT, Device, LutStore
from profilers import fixed_costs
from profilers.base import PROFILER_VERSION, ProfilerBackend
from profilers.protocol import MeasureProtocol

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
    """`profilers.fixed_costs.measure_fixed_costs` with the backend's own conversions of the
    probe models, or the backend's `measure_own_fixed_costs()` where it has one (mcu)."""
    own = getattr(backend, "measure_own_fixed_costs", None)
    if own is not None:  # a backend whose counts have no per-call I/O cost says what they hold
        return own()  # type: ignore[no-any-return]
    return fixed_costs.measure_fixed_costs(_BackendProbes(backend), drift_reference=drift_reference)


class _BackendProbes:
    """A backend as a `fixed_costs.ProbeTimer`: probe models built and converted locally."""

    def __init__(self, backend: ProfilerBackend) -> None:
        self.backend = backend

    @property
    def protocol(self) -> MeasureProtocol:
        return self.backend.protocol

    def use_drift_reference(self, nominal_ms: float | None) -> None:
        self.backend.use_drift_reference(nominal_ms)

    def measure_drift_reference(self) -> float:
        return self.backend.measure_drift_reference()

    def measure_op(self, spec: OpSpec) -> Measurement:
        return self.backend.measure_op(spec)

    def measure_network(self, name: str) -> Measurement:
        from profilers.export import probe_model

        return self.backend.measure_module(*probe_model(name), cache_key=name)


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
    passes: int = 1,
    on_start: Callable[[int], None] | None = None,
    on_measured: ProgressFn | None = None,
    owner: str = OPERATOR_TENANT,
) -> ProfileReport:
    """Measure every spec the device's LUT lacks (all of them with `force`), one committed row
    per op, so an interrupted run loses at most the op in flight and a rerun resumes. With
    `passes` > 1 every op is measured that many times, each later pass over all ops in its own
    shuffled order (a slow spell of the machine then falls on different ops each pass); an
    entry pools its passes' samples (`extra["passes"]`, `extra["pass_medians_ms"]`), rewritten
    after each pass, so an interrupted run resumes at the pass it was in. A new device name
    goes to tenant `owner`; one of another tenant raises lut.store.DeviceOwned."""
    from profilers.in_network import check_one_timing

    if passes < 1:
        raise ValueError("passes must be at least 1")
    check_one_timing(store, device_name, None)
    device = store.register_device(device_name, backend.fingerprint(), owner=owner)
    report = ProfileReport(device=device, total=0)
    if device.fixed_costs is None or force:
        store.set_fixed_costs(device, measure_fixed_costs(backend))
        report.fixed_costs_measured = True
    else:
        use_lut_drift_reference(backend, device)
    distinct = [s for s in {s.key: s for s in specs}.values() if not s.is_identity]
    done = {} if force else {k: _passes(m) for k, m in store.lookup(device, distinct).items()}
    report.total = sum(max(passes - done.get(s.key, 0), 0) for s in distinct)
    report.skipped = sum(1 for s in distinct if done.get(s.key, 0) >= passes)
    if on_start:
        on_start(report.total)
    index = 0
    for pass_index in range(1, passes + 1):
        todo = [s for s in distinct if done.get(s.key, 0) < pass_index]
        if pass_index > 1:
            random.Random(pass_index).shuffle(todo)
        for spec in todo:
            measurement = backend.measure_op(spec)
            if pass_index > 1:
                measurement = with_pass(store.lookup(device, [spec])[spec.key], measurement)
            store.add_measurement(
                device,
                spec,
                measurement,
                profiler_version=PROFILER_VERSION,
                replace=force or pass_index > 1,
            )
            done[spec.key] = pass_index
            if pass_index == 1 or spec not in report.measured:
                report.measured.append(spec)
            index += 1
            if on_measured:
                on_measured(spec, index, report.total)
    report.device = store.device(device.id)
    return report


def _passes(entry: Measurement) -> int:
    return int(entry.extra.get("passes", 1))


def with_pass(stored: Measurement, new: Measurement) -> Measurement:
    """`stored` (one or more passes) with one more pass's samples pooled in."""
    medians = [*stored.extra.get("pass_medians_ms", [stored.median_ms]), new.median_ms]
    pooled = Measurement.pooled([stored, new])
    extra = {k: v for k, v in pooled.extra.items() if k != "rounds_median_ms"}
    extra.update(passes=len(medians), pass_medians_ms=medians)
    return Measurement.from_samples(
        pooled.samples_ms,
        warmup=pooled.warmup,
        peak_memory_bytes=pooled.peak_memory_bytes,
        extra=extra,
    )
