"""Calibrating a device's LUT: time random architectures of a space end to end on the device
itself (in the LUT's unit), then fit the predictor's correction on every end-to-end run of that
space the device holds (`lut.predictor.fit_calibration`) and store it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lut.opspec import OpSpec
from lut.predictor import Calibration, Features, features, fit_calibration
from lut.store import Device, LutStore
from profilers.e2e import measure_into_store
from profilers.runner import use_lut_drift_reference

Decode = Callable[[str], Sequence[OpSpec]]
FINGERPRINT_KEYS = ("backend", "runtime_version", "provider", "threads", "cpu_model", "precision")
MAX_COUNT = 1000


class NotTheDevice(RuntimeError):
    """This machine is not the device whose LUT is being calibrated; the message says how."""


def check_same_machine(stored: dict[str, Any], here: dict[str, Any]) -> None:
    differ = [k for k in FINGERPRINT_KEYS if stored.get(k) != here.get(k)]
    if differ:
        raise NotTheDevice(
            "this machine is not the device's fingerprint "
            f"({', '.join(f'{k}: {stored.get(k)} vs {here.get(k)}' for k in differ)}); "
            "calibrate on the device itself"
        )


def fit_from_store(store: LutStore, device: Device, space: Any, decode: Decode) -> Calibration:
    """Fit the correction on every end-to-end run of `space` the device holds and store it;
    `decode` gives an architecture string's OpSpecs (`search.spaces.base.decode_string`)."""
    if device.fixed_costs is None:
        raise ValueError(f"device {device.name!r} has no fixed costs: profile it first")
    points = [
        (feats, measured) for _, feats, measured in calibration_points(store, device, space, decode)
    ]
    calibration = fit_calibration(points, device.fixed_costs)
    store.set_calibration(device, space.spec_string, calibration)
    return calibration


def calibration_points(
    store: LutStore, device: Device, space: Any, decode: Decode
) -> list[tuple[str, Features, float]]:
    """(architecture, its LUT features, its measured median ms) for every end-to-end run of
    `space` the device holds: what a calibration is fitted on, and what it is judged against."""
    if device.fixed_costs is None:
        raise ValueError(f"device {device.name!r} has no fixed costs: profile it first")
    points = []
    for text, measured in store.e2e_measurements(device, space.spec_string):
        specs = decode(text)
        lut = store.lookup(device, specs)
        points.append((text, features(specs, lut, device.fixed_costs), measured.median_ms))
    return points


def calibrate_device(
    store: LutStore,
    device: Device,
    backend: Any,
    space: Any,
    *,
    decode: Decode,
    count: int,
    seed: int,
    on_measured: Callable[[int, Any], None] | None = None,
) -> Calibration:
    """Time `count` random architectures of `space` (sampled by `seed`) on this machine, which
    must be the device (`NotTheDevice` otherwise), with the LUT's drift reference if it has one;
    then `fit_from_store`. ValueError for a count out of range or a LUT without fixed costs."""
    if not 0 <= count <= MAX_COUNT:
        raise ValueError(f"the number of architectures must be between 0 and {MAX_COUNT}")
    if device.fixed_costs is None:
        raise ValueError(f"device {device.name!r} has no fixed costs: profile it first")
    check_same_machine(device.fingerprint, backend.fingerprint())
    use_lut_drift_reference(backend, device)  # end-to-end runs in the LUT's unit
    archs = list(space.iter_random(seed, count))
    measure_into_store(store, device, backend, space, archs, resume=False, on_measured=on_measured)
    return fit_from_store(store, device, space, decode)
