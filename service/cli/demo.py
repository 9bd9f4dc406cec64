"""`hwnas demo`: the main job on the embedded default — profile this CPU into a LUT, calibrate it,
compare predicted with measured latency on random architectures, search within a budget, and
export the result with its model card."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from service.cli.common import (
    UsageProblem,
    make_backend,
    open_store,
    progress_bar,
    progress_steps,
    stderr,
    stdout,
    user_errors,
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
    if not 1 <= args.count <= 1000:
        raise UsageProblem("-n must be between 1 and 1000")
    space, device, backend = _profile(args)
    store = open_store()
    _calibrate(store, device, backend, space)
    _predicted_vs_measured(store, device, backend, space, args.count)
    return _search_and_export(store, device, space, args)


def _profile(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """Step 1: every op of the space into the device's LUT (resumable); a new LUT with the
    drift reference unless asked not to."""
    from profilers.runner import profile_specs
    from search.spaces.base import space_from_string

    stderr.print("[bold]1/4[/] profiling every op of the space (resumable)")
    with user_errors():
        space = space_from_string(args.space)
    reference = args.drift_reference and not _has_lut(args.device, args.backend)
    backend = make_backend(args.backend, 1, args.quick, drift_reference=reference)
    with progress_bar() as progress, user_errors():
        started, measured = progress_steps(progress, "ops", lambda spec: spec.short())
        report = profile_specs(
            open_store(),
            backend,
            args.device,
            space.distinct_opspecs(),
            on_start=started,
            on_measured=measured,
        )
    return space, report.device, backend


def _calibrate(store: Any, device: Any, backend: Any, space: Any) -> None:
    """Step 2: the LUT's correction fitted on 8 end-to-end runs."""
    from profilers.calibrate import calibrate_device
    from search.spaces.base import decode_string

    stderr.print("[bold]2/4[/] calibrating the LUT on end-to-end runs")
    with user_errors():
        fitted = calibrate_device(
            store, device, backend, space, decode=decode_string, count=8, seed=1000
        )
    stderr.print(f"leave-one-out error of the calibration: {fitted.mape_loo:.1f}%")


def _predicted_vs_measured(store: Any, device: Any, backend: Any, space: Any, count: int) -> None:
    """Step 3: fresh random architectures, LUT-predicted beside measured, in the LUT's unit."""
    from profilers.e2e import measure_network
    from profilers.runner import use_lut_drift_reference
    from search.cost import build_cost_model

    stderr.print("[bold]3/4[/] predicted vs measured on fresh random architectures")
    use_lut_drift_reference(backend, store.resolve_device(device.name, device.backend))
    model = build_cost_model(store, store.resolve_device(device.name, device.backend), space)
    table = Table("arch", "predicted ms", "measured ms", "error")
    errors = []
    for arch in space.iter_random(seed=2024, count=count):
        choices = [s.candidates.index(c) for s, c in zip(space.layers, arch.choices, strict=True)]
        predicted = model.cost(choices)
        measured = measure_network(backend, space, arch).median_ms
        errors.append((predicted - measured) / measured)
        table.add_row(
            arch.to_string()[:60] + "…", f"{predicted:.4f}", f"{measured:.4f}", f"{errors[-1]:+.1%}"
        )
    stdout.print(table)
    within = sum(abs(e) <= 0.10 for e in errors)
    mean = 100 * sum(abs(e) for e in errors) / len(errors)
    stdout.print(f"mean absolute error {mean:.1f}%, {within}/{len(errors)} within ±10%")


def _search_and_export(store: Any, device: Any, space: Any, args: argparse.Namespace) -> int:
    """Step 4: a hardcore search within a mid-range budget, its child trained and exported."""
    from deploy.api import export_run
    from search.cost import build_cost_model
    from search.data import DatasetError, load_dataset
    from search.request import build_requests
    from search.run import check_request, run_search

    model = build_cost_model(store, store.resolve_device(device.name, device.backend), space)
    budget = round(model.min_latency_ms + 0.5 * (model.max_latency_ms - model.min_latency_ms), 4)
    stderr.print(f"[bold]4/4[/] hardcore search on {args.dataset} within {budget} ms, then export")
    document = {
        "space": args.space,
        "dataset": args.dataset,
        "devices": [args.device],
        "budgets": [budget],
        "strategy": "hardcore",
        "epochs": args.epochs,
    }
    out = Path(args.out)
    try:
        data = load_dataset(args.dataset, seed=0, resolution=space.resolution)
    except DatasetError as exc:
        raise UsageProblem(str(exc)) from None
    with user_errors():
        ((_, run_dir, request),) = build_requests(document, out)
        check_request(request, store, data)
    with progress_bar() as progress, user_errors():
        task = progress.add_task("searching", total=None, status="")
        metrics = run_search(
            request, store, run_dir, data=data, on_event=lambda e: _advance(progress, task, e)
        )
    stdout.print(f"{run_dir}: {metrics['arch']}, test accuracy {metrics['test_accuracy']:.4f}")
    if not args.export:
        return 0
    with user_errors():
        result = export_run(run_dir, args.export.split(","))
    for message in result["errors"].values():
        stderr.print(f"hwnas: error: {message}")
    stdout.print(f"model card: {run_dir / 'card.md'}")
    return 1 if result["errors"] else 0


def _advance(progress: Any, task: Any, event: dict[str, Any]) -> None:
    if event.get("type") == "search":
        progress.update(task, total=event["steps"], completed=event["step"])
    elif event.get("type") == "train":
        progress.update(
            task, description="training", total=event["epochs"], completed=event["epoch"]
        )


def _has_lut(device: str, backend: str) -> bool:
    """Whether `device` already has a LUT of `backend` (it then keeps its drift reference)."""
    return any(d.fixed_costs is not None for d in open_store().devices(device, backend))
