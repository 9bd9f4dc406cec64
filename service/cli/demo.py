"""`hwnas demo`: the main job on the embedded default — profile this CPU into a LUT, calibrate it,
compare predicted with measured latency on random architectures, search within a budget, and
export the result with its model card."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from service.cli.common import (
    UsageProblem,
    command_arguments,
    open_store,
    stderr,
    stdout,
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="profile this CPU, calibrate, check predicted vs measured latency, search, export",
        description="Runs the whole profile → predict → measure loop on this machine with the "
        "embedded SQLite database: profiles SPACE with BACKEND into device 'this-cpu', "
        "calibrates on a few end-to-end runs, then predicts and measures fresh random "
        "architectures and prints both side by side, and finally runs a short hardcore search "
        "on DATASET within a mid-range budget and exports the result (ONNX, TFLite, int8) with "
        "its model card (OUT/card.md).",
    )
    p.add_argument("--space", default="fbnet-tiny", help="search space (default fbnet-tiny)")
    p.add_argument("--backend", default="onnxruntime", help="runtime (default onnxruntime)")
    p.add_argument("--device", default="this-cpu", help="device name (default this-cpu)")
    p.add_argument("-n", "--count", type=int, default=8, help="architectures to compare (8)")
    p.add_argument("--quick", action="store_true", help="a fast, looser measuring protocol")
    p.add_argument(
        "--no-drift-reference",
        dest="drift_reference",
        action="store_false",
        help="profile a new LUT without pairing runs with a reference model (see hwnas profile "
        "--help; an existing LUT keeps its own choice)",
    )
    p.add_argument("--dataset", default="mnist5k", help="dataset of the search step (mnist5k)")
    p.add_argument("--epochs", type=int, default=3, help="search and training epochs (3)")
    p.add_argument("--out", default="runs/demo", help="run directory of the search (runs/demo)")
    p.add_argument(
        "--export",
        default="onnx,tflite,onnx-int8,tflite-int8",
        help="formats to export the result to (default: all four CPU formats; '' for none)",
    )
    p.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from profilers.calibrate import calibrate_device
    from profilers.e2e import measure_network
    from profilers.runner import use_lut_drift_reference
    from search.spaces.base import decode_string, space_from_string
    from service.cli import profile
    from service.cli.arch import predict_architecture

    if not 1 <= args.count <= 1000:
        raise UsageProblem("-n must be between 1 and 1000")
    stderr.print("[bold]1/4[/] profiling every op of the space (resumable)")
    lut_args = ["--device", args.device, "--backend", args.backend, "--space", args.space]
    quick = ["--quick"] if args.quick else []
    new_lut = args.drift_reference and not _has_lut(args.device, args.backend)
    reference = ["--drift-reference"] if new_lut else []
    profile.run(command_arguments(profile, "profile", [*lut_args, *quick, *reference]))
    stderr.print("[bold]2/4[/] calibrating the LUT on end-to-end runs")
    store = open_store()
    device = store.resolve_device(args.device, args.backend)
    backend = profile.make_backend(args.backend, 1, args.quick)
    space = space_from_string(args.space)
    fitted = calibrate_device(
        store, device, backend, space, decode=decode_string, count=8, seed=1000
    )
    stderr.print(f"leave-one-out error of the calibration: {fitted.mape_loo:.1f}%")
    stderr.print("[bold]3/4[/] predicted vs measured on fresh random architectures")
    use_lut_drift_reference(backend, device)  # measured in the LUT's unit
    table = Table("arch", "predicted ms", "measured ms", "error")
    errors = []
    for arch in space.iter_random(seed=2024, count=args.count):
        predicted = predict_architecture(store, device, arch.to_string(), raw=False).latency_ms
        measured = measure_network(backend, space, arch).median_ms
        errors.append(abs(predicted - measured) / measured)
        table.add_row(
            arch.to_string()[:60] + "…",
            f"{predicted:.4f}",
            f"{measured:.4f}",
            f"{(predicted - measured) / measured:+.1%}",
        )
    stdout.print(table)
    within = sum(e <= 0.10 for e in errors)
    stdout.print(
        f"mean absolute error {100 * sum(errors) / len(errors):.1f}%, "
        f"{within}/{len(errors)} within ±10%"
    )
    from search.cost import build_cost_model
    from service.cli import search
    from service.cli.search import run_search_command

    model = build_cost_model(store, device, space)
    budget = round(model.min_latency_ms + 0.5 * (model.max_latency_ms - model.min_latency_ms), 4)
    stderr.print(f"[bold]4/4[/] hardcore search on {args.dataset} within {budget} ms, then export")
    search_args = [
        *("--space", args.space, "--dataset", args.dataset, "--device", args.device),
        *("--strategy", "hardcore", "--latency-ms", str(budget), "--epochs", str(args.epochs)),
        *("--out", str(args.out)),
        *(("--export", args.export) if args.export else ()),
    ]
    return run_search_command(command_arguments(search, "search", search_args))


def _has_lut(device: str, backend: str) -> bool:
    """Whether `device` already has a LUT of `backend` (it then keeps its drift reference)."""
    return any(d.fixed_costs is not None for d in open_store().devices(device, backend))
