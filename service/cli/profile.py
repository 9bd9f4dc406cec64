"""`hwnas profile`: measure every OpSpec of a search space on this machine into a device's LUT."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.common import (
    UsageProblem,
    add_tenant_argument,
    make_backend,
    open_store,
    progress_bar,
    progress_steps,
    reference_note,
    stderr,
    user_errors,
)
from service.cli.mcu_options import add_mcu_arguments, backend_options


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "profile",
        help="measure a search space's ops on this machine into a device's LUT",
        description="Measure the latency of every distinct op of a search space in one runtime "
        "and store it in the LUT of DEVICE. Resumable: ops already measured are skipped, and "
        "Ctrl-C keeps everything measured so far.",
    )
    parser.add_argument("--device", required=True, help="device name, e.g. laptop")
    parser.add_argument("--backend", required=True, help="runtime: onnxruntime, litert, torch, ...")
    parser.add_argument(
        "--space", required=True, help="search space, optionally with parameters (fbnet@r160_w0.75)"
    )
    parser.add_argument("--threads", type=int, default=1, help="runtime threads (default 1)")
    parser.add_argument(
        "--force", action="store_true", help="measure again ops that are already in the LUT"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a fast, looser protocol (±5%% CI, 0.5 s cap per op) for demos and smoke tests",
    )
    parser.add_argument(
        "--drift-reference",
        action="store_true",
        help="pair every timed run with a run of a fixed reference model and express the LUT in "
        "its unit, so that a machine whose speed drifts (shared or virtual CPUs) still gives "
        "entries that add up; about doubles the profiling time. Chosen when a LUT is created: "
        "later profiling, calibration and agents of that LUT follow it",
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=1,
        metavar="N",
        help="measure every op N times, each later pass over all ops in its own shuffled order, "
        "and pool the passes, so that a slow spell of the machine falls on different ops each "
        "time (see docs/measuring.md); adds passes to a LUT that "
        "has fewer",
    )
    parser.add_argument(
        "--in-network",
        action="store_true",
        help="onnxruntime on the CPU only: time the ops inside whole networks instead of as "
        "stand-alone micro-models (covering networks in which every candidate of every layer "
        "runs, timed with ORT's per-node profiler). Predicts large networks better (fbnet at "
        "224x224: see docs/measuring.md). A device name holds one kind of LUT: give an "
        "in-network one a name of its own (laptop-in-network)",
    )
    parser.add_argument(
        "--network-rounds",
        type=int,
        default=None,
        metavar="N",
        help="with --in-network: every candidate of every layer runs in N networks, each time "
        "beside other neighbours (default 4: 36 networks for fbnet)",
    )
    add_mcu_arguments(parser)
    add_tenant_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from profilers.runner import profile_specs
    from search.spaces.base import space_from_string

    if args.network_rounds is not None and not args.in_network:
        raise UsageProblem("--network-rounds goes with --in-network")
    if args.passes < 1:
        raise UsageProblem("--passes must be at least 1")
    if args.in_network and args.passes != 1:
        raise UsageProblem(
            "--passes is for micro-model LUTs; with --in-network use --network-rounds"
        )
    with user_errors():
        space = space_from_string(args.space)
    backend = make_backend(
        args.backend,
        args.threads,
        args.quick,
        drift_reference=args.drift_reference,
        options=backend_options(args),
    )
    if args.in_network:
        return run_in_network(args, space, backend)
    store = open_store()
    specs = space.distinct_opspecs()
    stderr.print(
        f"profiling [bold]{space.spec_string}[/] ({len(specs)} distinct ops) with "
        f"{args.backend}, {args.threads} thread(s), into device [bold]{args.device}[/]"
    )
    with progress_bar() as progress, user_errors():
        started, measured = progress_steps(progress, "ops", lambda spec: spec.short())
        report = profile_specs(
            store,
            backend,
            args.device,
            specs,
            force=args.force,
            passes=args.passes,
            on_start=started,
            on_measured=measured,
            owner=args.tenant,
        )
    fixed = report.device.fixed_costs
    stderr.print(
        f"measured {len(report.measured)} op(s)"
        + (f" ({report.total} runs of {args.passes} passes)" if args.passes > 1 else "")
        + f", {report.skipped} already in the LUT; "
        f"device {report.device.label} now holds {store.count_measurements(report.device)} op(s)"
    )
    if fixed is not None:
        stderr.print(
            f"fixed costs: {fixed.call_overhead_ms * 1000:.1f} µs per call + "
            f"{fixed.per_mb_ms * 1000:.1f} µs/MB of I/O, "
            f"{fixed.between_blocks_ms * 1000:.1f} µs between blocks" + reference_note(fixed)
        )
    return 0


def run_in_network(args: argparse.Namespace, space: Any, backend: Any) -> int:
    from profilers.in_network import DEFAULT_ROUNDS, check_in_network_backend, profile_in_network

    rounds = DEFAULT_ROUNDS if args.network_rounds is None else args.network_rounds
    if rounds < 1:
        raise UsageProblem("--network-rounds must be at least 1")
    try:
        check_in_network_backend(backend)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    store = open_store()
    stderr.print(
        f"profiling [bold]{space.spec_string}[/] inside networks ({rounds} round(s)) with "
        f"{args.backend}, {args.threads} thread(s), into device [bold]{args.device}[/]"
    )
    with progress_bar() as progress, user_errors():
        started, profiled = progress_steps(
            progress, "networks", lambda arch: arch.split(":")[-1][:40]
        )
        report = profile_in_network(
            store,
            backend,
            args.device,
            space,
            rounds=rounds,
            force=args.force,
            on_start=started,
            on_network=profiled,
            owner=args.tenant,
        )
    stderr.print(
        f"profiled {len(report.profiled)} of {report.networks} network(s) (the rest were "
        f"cached), wrote {report.entries_written} op(s); device {report.device.label} "
        f"(in-network) now holds {store.count_measurements(report.device)} op(s)"
    )
    if report.blocks_too_small and report.median_entry_ms is not None:
        stderr.print(
            f"note: the median op takes {report.median_entry_ms * 1000:.0f} µs inside these "
            "networks; below ~100 µs ORT's profiler (whole microseconds, and a cost of its own "
            "per node) is a large part of each entry: compare with the default micro-model LUT "
            "(`hwnas lut calibrate` prints each one's error)"
        )
    return 0
