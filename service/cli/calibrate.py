"""`hwnas lut calibrate`: fit a device's LUT correction on a few end-to-end measurements."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.common import (
    EnvironmentProblem,
    make_backend,
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
    from profilers.calibrate import NotTheDevice, calibrate_device
    from search.spaces.base import decode_string, space_from_string

    store = open_store()
    with user_errors():
        device = store.resolve_device(args.device, args.backend)
        space = space_from_string(args.space)
    backend = make_backend(device.backend, int(device.fingerprint.get("threads", 1)), args.quick)
    with progress_bar() as progress, user_errors():
        task = progress.add_task("end-to-end", total=args.count, status="")
        try:
            calibration = calibrate_device(
                store,
                device,
                backend,
                space,
                decode=decode_string,
                count=args.count,
                seed=args.seed,
                on_measured=lambda _i, _m: progress.advance(task),
            )
        except NotTheDevice as exc:
            raise EnvironmentProblem(str(exc)) from None
    stdout.print(
        f"calibrated {device.label} for {space.spec_string} on {calibration.n_points} runs: "
        f"MAPE {calibration.mape_before:.1f}% → {calibration.mape_after:.1f}% "
        f"(alphas {_alphas(calibration)}, beta {calibration.beta * 1000:.1f} µs/op, "
        f"gamma {calibration.gamma * 1000:.1f} µs; form {calibration.form}, leave-one-out "
        f"MAPE {calibration.mape_loo:.1f}%)"
    )
    return 0


def _alphas(calibration: Any) -> str:
    return " ".join(f"{k} {v:.2f}" for k, v in calibration.alphas.items())
