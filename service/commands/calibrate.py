"""`hwnas lut calibrate`: fit a device's LUT correction on a few end-to-end measurements."""

from __future__ import annotations

import argparse
from typing import Any

from lut.predictor import features, fit_calibration
from service.commands.common import (
    EnvironmentProblem,
    open_store,
    progress_bar,
    stdout,
    user_errors,
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure random architectures end to end and fit the LUT's correction",
        description="Measure N random architectures of SPACE end to end on this machine (which "
        "must be the device: same runtime and version), store them, and fit predicted = "
        "alpha·compute + beta·ops + gamma on every end-to-end run of that space.",
    )
    p.add_argument("--device", required=True, help="device name")
    p.add_argument("--backend", help="pick the LUT of this backend when a device has several")
    p.add_argument("--space", required=True, help="search space (with parameters, as profiled)")
    p.add_argument(
        "-n",
        "--count",
        type=int,
        default=20,
        help="architectures to measure (20: enough for one alpha per op family; the accuracy "
        "README quotes is for 20)",
    )
    p.add_argument("--seed", type=int, default=1000, help="seed of the sampled architectures")
    p.add_argument("--quick", action="store_true", help="a fast, looser protocol")
    p.set_defaults(handler=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    from profilers.runner import use_lut_drift_reference
    from search.spaces.base import space_from_string
    from service.commands.arch import measure_architecture
    from service.commands.profile import make_backend

    store = open_store()
    with user_errors():
        device = store.resolve_device(args.device, args.backend)
        space = space_from_string(args.space)
        if not 0 <= args.count <= 1000:
            raise ValueError("-n must be between 0 and 1000")
    fixed = device.fixed_costs
    if fixed is None:
        raise EnvironmentProblem(f"device {device.name!r} has no fixed costs: profile it first")
    backend = make_backend(device.backend, int(device.fingerprint.get("threads", 1)), args.quick)
    _check_same_machine(device.fingerprint, backend.fingerprint())
    with user_errors():
        use_lut_drift_reference(backend, device)  # end-to-end runs in the LUT's unit
    archs = [a.to_string() for a in space.iter_random(args.seed, args.count)]
    with progress_bar() as progress, user_errors():
        task = progress.add_task("end-to-end", total=len(archs), status="")
        for text in archs:
            arch, space_key, m = measure_architecture(backend, text)
            store.add_e2e(device, arch, space_key, m)
            progress.advance(task)
    points = []
    with user_errors():
        for arch, m in store.e2e_measurements(device, space.spec_string):
            sp, a = _parse(arch)
            specs = sp.decode(a)
            points.append((features(specs, store.lookup(device, specs), fixed), m.median_ms))
        calibration = fit_calibration(points, fixed)
    store.set_calibration(device, space.spec_string, calibration)
    stdout.print(
        f"calibrated {device.label} for {space.spec_string} on {calibration.n_points} runs: "
        f"MAPE {calibration.mape_before:.1f}% → {calibration.mape_after:.1f}% "
        f"(alphas {_alphas(calibration)}, beta {calibration.beta * 1000:.1f} µs/op, "
        f"gamma {calibration.gamma * 1000:.1f} µs; form {calibration.form}, leave-one-out "
        f"MAPE {calibration.mape_loo:.1f}%)"
    )
    return 0


def _parse(text: str) -> Any:
    from search.spaces.base import parse_architecture

    return parse_architecture(text)


def _check_same_machine(stored: dict[str, Any], here: dict[str, Any]) -> None:
    keys = ("backend", "runtime_version", "provider", "threads", "cpu_model", "precision")
    differ = [k for k in keys if stored.get(k) != here.get(k)]
    if differ:
        raise EnvironmentProblem(
            "this machine is not the device's fingerprint "
            f"({', '.join(f'{k}: {stored.get(k)} vs {here.get(k)}' for k in differ)}); "
            "calibrate on the device itself"
        )


def _alphas(calibration: Any) -> str:
    return " ".join(f"{k} {v:.2f}" for k, v in calibration.alphas.items())
