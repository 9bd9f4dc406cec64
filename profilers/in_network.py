"""In-network profiling: a LUT whose entries are the ops' kernel times *inside whole networks*.

A stand-alone micro-model runs with its own input and weights warm in the caches, and with
layouts at its edges that a network may not have (ORT fuses a residual `Add` into the NCHWc
convolution before it inside a network, but not when the block's input arrives in NCHW). The
gap differs from op to op — the expanding blocks at high resolution differ the most — so a
single calibration factor cannot restore their ranking (docs/measuring.md has the figures).

So this profiler times a few *covering networks* instead: in each round, the network j takes at
every searchable layer the candidate (offset + j) mod n, with a random offset per layer and
round, so that every candidate of every layer runs once per round, each time beside other
neighbours. ORT's profiler gives every block's kernel time in every timed run
(`ort_kernels.block_ms_per_run`); an op's entry pools its samples over all its appearances.
Fixed ops (stem, head) appear in every network. Each network's block times are cached on disk
as it finishes, so an interrupted run resumes. ONNX Runtime on the CPU only: other runtimes
have no per-node profiler here."""

from __future__ import annotations

import hashlib
import json
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lut.measurement import Measurement
from lut.predictor import IN_NETWORK_TIMING
from lut.store import OPERATOR_TENANT, Device, LutStore
from profilers.base import PROFILER_VERSION, ProfilerBackend
from profilers.runner import measure_fixed_costs, use_lut_drift_reference

if TYPE_CHECKING:
    from search.spaces.base import Architecture, SearchSpace

DEFAULT_ROUNDS = 4
SMALL_BLOCK_MS = 0.1
NetworkProgress = Callable[[str, int, int], None]


@dataclass
class InNetworkReport:
    device: Device
    networks: int
    profiled: list[str] = field(default_factory=list)  # architectures profiled this run
    entries_written: int = 0
    fixed_costs_measured: bool = False
    median_entry_ms: float | None = None  # of the entries written this run

    @property
    def blocks_too_small(self) -> bool:
        """Blocks of ~10-50 µs (28×28 networks): ORT's profiler counts whole microseconds and
        adds its own cost to every node, a large share of such blocks."""
        return self.median_entry_ms is not None and self.median_entry_ms < SMALL_BLOCK_MS


def in_network_fingerprint(backend: ProfilerBackend) -> dict[str, Any]:
    """The backend's fingerprint, marked: an in-network LUT is a LUT of its own."""
    return {**backend.fingerprint(), "timing": IN_NETWORK_TIMING}


def check_in_network_backend(backend: ProfilerBackend) -> None:
    if backend.name != "onnxruntime" or getattr(backend, "is_cuda", False):
        raise ValueError(
            "in-network profiling needs ONNX Runtime's per-node CPU profiler: use "
            f"--backend onnxruntime on the CPU (not {backend.name} on {backend.device})"
        )


def check_one_timing(store: LutStore, device_name: str, timing: str | None) -> None:
    """A device name holds LUTs of one kind: in-network (`timing`) or micro-model (None).
    Predictions use a name's newest LUT, so a second kind would hide the first."""
    for other in store.devices(device_name):
        kind = other.fingerprint.get("timing")
        if kind != timing:
            mine = "an in-network" if timing else "a micro-model"
            theirs = "an in-network" if kind else "a micro-model"
            raise ValueError(
                f"device {device_name!r} already holds {theirs} LUT ({other.backend}); give "
                f"{mine} LUT a device name of its own"
            )


def lut_fingerprint(store: LutStore, device_name: str, backend: ProfilerBackend) -> dict[str, Any]:
    """The fingerprint under which this backend's runs belong to `device_name`'s LUTs."""
    if store.holds_in_network_lut(device_name):
        return in_network_fingerprint(backend)
    return backend.fingerprint()


def covering_architectures(space: SearchSpace, rounds: int, seed: int = 0) -> list[Architecture]:
    """`rounds` × (most candidates of a layer) networks in which every candidate of every
    searchable layer appears once per round (a layer with fewer candidates repeats some)."""
    if rounds < 1:
        raise ValueError("in-network profiling needs at least one round")
    candidates = [list(slot.candidates) for slot in space.layers]
    width = max(len(c) for c in candidates)
    rng = random.Random(seed)
    archs = []
    for _ in range(rounds):
        offsets = [rng.randrange(len(c)) for c in candidates]
        for j in range(width):
            archs.append(
                space.architecture(
                    [c[(o + j) % len(c)] for c, o in zip(candidates, offsets, strict=True)]
                )
            )
    return archs


def profile_in_network(
    store: LutStore,
    backend: ProfilerBackend,
    device_name: str,
    space: SearchSpace,
    *,
    rounds: int = DEFAULT_ROUNDS,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_network: NetworkProgress | None = None,
    owner: str = OPERATOR_TENANT,
) -> InNetworkReport:
    """Profile the covering networks of `space` into the in-network LUT of `device_name` and
    write one entry per distinct op (existing entries are kept unless `force`); a new device
    name goes to tenant `owner`."""
    check_in_network_backend(backend)
    check_one_timing(store, device_name, IN_NETWORK_TIMING)
    device = store.register_device(device_name, in_network_fingerprint(backend), owner=owner)
    archs = covering_architectures(space, rounds)
    report = InNetworkReport(device=device, networks=len(archs))
    if device.fixed_costs is None or force:
        # Block boundaries are inside the blocks' in-network times: none is added on top.
        fixed = replace(measure_fixed_costs(backend), between_blocks_ms=0.0)
        store.set_fixed_costs(device, fixed)
        report.fixed_costs_measured = True
    else:
        use_lut_drift_reference(backend, device)
    specs = space.distinct_opspecs()
    todo = specs if force else store.missing(device, specs)
    todo = [s for s in todo if not s.is_identity]
    if on_start:
        on_start(len(archs) if todo else 0)
    if not todo:
        report.device = store.device(device.id)
        return report
    device = store.device(device.id)
    samples, appearances = _profile_networks(
        backend, device, space, archs, report, force, on_network
    )
    medians = []
    for spec in todo:
        if not samples.get(spec.key):
            raise RuntimeError(
                f"no kernel of {spec.short()} was found in the profiles of the covering networks"
            )
        measurement = Measurement.from_samples(
            samples[spec.key],
            warmup=backend.protocol.warmup_runs,
            extra={
                "timing": IN_NETWORK_TIMING,
                "backend": backend.name,
                "threads": backend.threads,
                "networks": len(archs),
                "appearances": appearances[spec.key],
            },
        )
        store.add_measurement(
            device, spec, measurement, profiler_version=PROFILER_VERSION, replace=force
        )
        report.entries_written += 1
        medians.append(measurement.median_ms)
    report.median_entry_ms = statistics.median(medians)
    report.device = store.device(device.id)
    return report


def _profile_networks(
    backend: ProfilerBackend,
    device: Device,
    space: SearchSpace,
    archs: list[Architecture],
    report: InNetworkReport,
    force: bool,
    on_network: NetworkProgress | None,
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Every op's per-run kernel times over its appearances in `archs`, and how many times it
    appeared; each network's block times come from the cache when it holds them."""
    import torch

    cache = backend.cache_dir / "in_network" / _unit_key(device)
    cache.mkdir(parents=True, exist_ok=True)
    example = torch.randn(space.input_shape, generator=torch.Generator().manual_seed(0))
    samples: dict[str, list[float]] = {}
    appearances: dict[str, int] = {}
    for index, arch in enumerate(archs, start=1):
        text = arch.to_string()
        path = cache / f"{_digest(text)}.json"
        if path.exists() and not force:
            per_block = json.loads(path.read_text())["blocks"]
        else:
            per_run = backend.profile_blocks(  # type: ignore[attr-defined]
                space.build(arch), example, f"net-{_digest(text)}"
            )
            per_block = _by_block(per_run)
            _write_atomically(path, {"arch": text, "blocks": per_block})
            report.profiled.append(text)
        for position, spec in enumerate(space.decode(arch)):
            if not spec.is_identity:
                samples.setdefault(spec.key, []).extend(per_block.get(str(position), []))
                appearances[spec.key] = appearances.get(spec.key, 0) + 1
        if on_network:
            on_network(text, index, len(archs))
    return samples, appearances


def _by_block(per_run: list[dict[int, float]]) -> dict[str, list[float]]:
    blocks: dict[str, list[float]] = {}
    for run in per_run:
        for block, ms in run.items():
            blocks.setdefault(str(block), []).append(ms)
    return blocks


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _unit_key(device: Device) -> str:
    """Cached block times hold for one fingerprint and one unit (the LUT's drift reference)."""
    reference = device.fixed_costs.reference_ms if device.fixed_costs else None
    return _digest(f"{device.fingerprint_hash}:{reference!r}")


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
