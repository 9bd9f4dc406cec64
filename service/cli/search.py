"""`hwnas search`: find the most accurate architecture of a space within a latency budget."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from search.request import (
    BOUNDS,
    DEFAULT_STRATEGY,
    DEFAULT_TRIALS,
    MEMORY_BUDGETS,
    WEIGHT_SAMPLING,
    SearchSettings,
)
from service.cli.common import (
    EnvironmentProblem,
    UsageProblem,
    open_store,
    progress_bar,
    settings,
    stderr,
    stdout,
    user_errors,
)

REQUEST_FILE = "request.json"
DEFAULTS = SearchSettings(DEFAULT_STRATEGY)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "search",
        help="search a space for the most accurate architecture within a latency budget",
        description="Train a weight-sharing supernet on DATASET with DEVICE's LUT as the latency "
        "cost, derive the architecture, train it and write arch.json, child.pt, metrics.json and "
        "the search history to --out. Several budgets (--latency-ms 0.2,0.3,0.4) train one "
        "supernet, search each budget on its weights, train each result under budget-<ms>/ and "
        "add a Pareto table and plot (--separate-searches: one whole search each).",
    )
    p.add_argument("--space", help="search space, e.g. fbnet-tiny")
    p.add_argument("--dataset", help="mnist5k, digits, or a folder / .zip / .npz of your own")
    p.add_argument("--device", action="append", help="device LUT for the budget (repeatable)")
    p.add_argument(
        "--strategy",
        default=DEFAULT_STRATEGY,
        help=f"a registered strategy (default {DEFAULT_STRATEGY}): hardcore, fbnet, proxyless, "
        "random, evolution, or one added to search/strategies/",
    )
    p.add_argument("--latency-ms", help="budget(s) on the first device, comma-separated")
    p.add_argument(
        "--device-budget",
        action="append",
        default=[],
        metavar="DEVICE=MS",
        help="a further hard budget on another device (repeatable)",
    )
    p.add_argument(
        "--sram-kb",
        type=float,
        help="hard SRAM budget in KiB on an MCU device: the TFLite Micro tensor arena",
    )
    p.add_argument(
        "--flash-kb",
        type=float,
        help="hard flash budget in KiB on an MCU device: the model and its operators' code",
    )
    p.add_argument(
        "--separate-searches",
        action="store_true",
        help="with several budgets, one whole search per budget instead of one shared supernet",
    )
    p.add_argument(
        "--arch-steps",
        type=int,
        help="with several budgets on one supernet, architecture steps per budget (default: "
        "the budgets together take twice a single search's architecture steps)",
    )
    p.add_argument(
        "--weight-sampling",
        choices=WEIGHT_SAMPLING,
        default=DEFAULTS.weight_sampling,
        help="with several budgets on one supernet, its weight steps: single (one path a step) "
        "or sandwich (largest, smallest and a sampled path a step, the smaller two distilled "
        f"from the largest; about 3x the weight phase's time) ({DEFAULTS.weight_sampling})",
    )
    p.add_argument(
        "--epochs", type=int, default=DEFAULTS.epochs, help=f"search epochs ({DEFAULTS.epochs})"
    )
    p.add_argument(
        "--warmup-epochs",
        type=int,
        help="weights-only epochs first, fewer than --epochs (default 1, or 0 with --epochs 1)",
    )
    p.add_argument(
        "--child-epochs", type=int, help="training epochs of the result (default: --epochs)"
    )
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument(
        "--arch-lr",
        type=float,
        help="Adam learning rate of the architecture parameters (default: the strategy's; "
        "0.05 for fbnet and hardcore, 0.01 for proxyless)",
    )
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument(
        "--trials",
        type=int,
        default=DEFAULT_TRIALS,
        help=f"candidates of the baselines, random and evolution ({DEFAULT_TRIALS})",
    )
    p.add_argument(
        "--inherit-weights", action="store_true", help="start the child from supernet weights"
    )
    p.add_argument(
        "--child-shift",
        type=int,
        default=0,
        metavar="PX",
        help="augment the child's training: every image shifted by a random offset of up to PX "
        "pixels (0: none; 2 suits 28x28 digits)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=DEFAULTS.checkpoint_every,
        help=f"steps between checkpoints ({DEFAULTS.checkpoint_every})",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a strategy option, e.g. tau0=5 (repeatable)",
    )
    p.add_argument("--out", type=Path, help="run directory (default runs/<strategy>-<space>)")
    p.add_argument("--resume", type=Path, metavar="DIR", help="continue the search in DIR")
    p.add_argument(
        "--export",
        metavar="FORMATS",
        help="then export each result like `hwnas export`: onnx,tflite,onnx-int8,tflite-int8",
    )
    p.set_defaults(handler=run_search_command)


def _parse_options(items: list[str]) -> dict[str, Any]:
    from search.strategies.base import parse_options

    try:
        return parse_options(items)
    except ValueError as exc:
        raise UsageProblem(f"--option: {exc}") from None


def _request_from_args(args: argparse.Namespace) -> dict[str, Any]:
    if args.resume is not None:
        path = args.resume / REQUEST_FILE
        if not path.exists():
            raise UsageProblem(f"{args.resume} is not a search run directory (no {REQUEST_FILE})")
        request: dict[str, Any] = json.loads(path.read_text())
        if (request.get("warmup_epochs") or 0) >= request.get("epochs", 10):
            request["warmup_epochs"] = None  # an old run's default, then clamped silently
        request.setdefault("shared_supernet", False)  # a run from before: one search a budget
        return request
    missing = [n for n in ("space", "dataset", "device") if getattr(args, n) in (None, [])]
    if missing:
        raise UsageProblem(f"missing --{', --'.join(missing)} (or give --resume DIR)")
    try:
        budgets = [float(x) for x in args.latency_ms.split(",")] if args.latency_ms else []
        extra = {d: float(ms) for d, _, ms in (b.partition("=") for b in args.device_budget)}
    except ValueError:
        raise UsageProblem(
            "budgets must be numbers: --latency-ms 0.3 or --device-budget pi=2.5"
        ) from None
    return {
        "space": args.space,
        "dataset": args.dataset,
        "devices": args.device,
        "budgets": budgets,
        "device_budgets": extra,
        "sram_kb": args.sram_kb,
        "flash_kb": args.flash_kb,
        "strategy": args.strategy,
        "epochs": args.epochs,
        "warmup_epochs": args.warmup_epochs,
        "child_epochs": args.child_epochs,
        "batch_size": args.batch_size,
        "arch_lr": args.arch_lr,
        "seed": args.seed,
        "trials": args.trials,
        "inherit_weights": args.inherit_weights,
        "child_shift_px": args.child_shift,
        "checkpoint_every": args.checkpoint_every,
        "shared_supernet": not args.separate_searches,
        "arch_steps": args.arch_steps,
        "weight_sampling": args.weight_sampling,
        "options": _parse_options(args.option),
        "out": str(args.out or Path("runs") / f"{args.strategy}-{args.space}"),
    }


def run_search_command(args: argparse.Namespace) -> int:
    from search.data import DatasetError, load_dataset
    from search.mckp import Infeasible
    from search.pareto import write_pareto
    from search.request import build_requests
    from search.spaces.base import space_from_string

    req = _request_from_args(args)
    export_formats = _export_formats(args.export)
    out = Path(req["out"])
    with user_errors():
        space = space_from_string(req["space"])
    try:
        requests = build_requests(req, out)
    except ValueError as exc:
        raise UsageProblem(as_flags(str(exc))) from None
    store = open_store()
    try:
        data = load_dataset(req["dataset"], seed=req["seed"], resolution=space.resolution)
    except DatasetError as exc:
        raise UsageProblem(str(exc)) from None
    from search.run import check_request

    with user_errors():
        try:
            for _, _, request in requests:
                check_request(request, store, data)
        except Infeasible as exc:
            raise UsageProblem(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / REQUEST_FILE).write_text(json.dumps(req, indent=1))
    from search.shared import shares_supernet

    if settings().ray_address:
        results = _run_on_ray(req, out)
    elif shares_supernet(req, requests):
        results = _run_shared(requests, store, out, data)
    else:
        results = _run_each(requests, store, data)
    for _budget, run_dir, metrics in results:
        lat = ", ".join(f"{d} {v:.4f} ms" for d, v in metrics["predicted_latency_ms"].items())
        memory = metrics.get("predicted_memory")
        if memory:
            lat += (
                f", SRAM {memory['sram_bytes'] / 1024:.1f} KiB, "
                f"flash {memory['flash_bytes'] / 1024:.1f} KiB"
            )
        stdout.print(
            f"{run_dir}: {metrics['arch']}\n  test accuracy {metrics['test_accuracy']:.4f}, predicted {lat}"
        )
    if len(results) > 1:
        write_pareto(out, results)
        stdout.print(f"Pareto table and plot: {out / 'pareto.md'}, {out / 'pareto.png'}")
    if export_formats:
        from service.cli.search_exports import export_runs

        return export_runs([run_dir for _, run_dir, _ in results], export_formats)
    return 0


def _run_each(requests: list[Any], store: Any, data: Any) -> list[Any]:
    """One whole search per budget, in turn."""
    results = []
    for budget, run_dir, request in requests:
        with progress_bar() as progress, user_errors():
            label = (
                f"{request.settings.strategy} @ {budget} ms"
                if budget
                else request.settings.strategy
            )
            task = progress.add_task(label, total=None, status="")
            events = run_dir / "events.jsonl"
            run_dir.mkdir(parents=True, exist_ok=True)
            with events.open("a") as log:
                handler = _progress_handler(progress, task, log)
                results.append((budget, run_dir, _run(request, store, run_dir, data, handler)))
    return results


def _run_shared(requests: list[Any], store: Any, out: Path, data: Any) -> list[Any]:
    """Every budget on one supernet (search.shared): one bar for the search's phases, one per
    child; each budget's events in its own events.jsonl, the weight phase's in supernet/."""
    from search.shared import SHARED_DIR, run_shared_search

    logs = {budget: run_dir / "events.jsonl" for budget, run_dir, _ in requests}
    logs[None] = out / SHARED_DIR / "events.jsonl"
    for path in logs.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    with progress_bar() as progress, user_errors():
        label = f"{requests[0][2].settings.strategy} @ {len(requests)} budgets, one supernet"
        search_task = progress.add_task(label, total=None, status="")
        child_tasks: dict[Any, Any] = {}
        handlers: dict[Any, Any] = {}
        files = {budget: path.open("a") for budget, path in logs.items()}
        try:

            def handle(event: dict[str, Any]) -> None:
                budget = event.get("budget_ms")
                if event.get("type") in ("train", "derived") and budget not in child_tasks:
                    child_tasks[budget] = progress.add_task(
                        f"child @ {budget} ms", total=None, status=""
                    )
                task = child_tasks.get(budget, search_task)
                if (budget, task) not in handlers:
                    handlers[budget, task] = _progress_handler(progress, task, files[budget])
                handlers[budget, task](event)

            return run_shared_search(requests, store, out, data=data, on_event=handle)
        finally:
            for file in files.values():
                file.close()


def _run_on_ray(req: dict[str, Any], out: Path) -> list[Any]:
    """The search's units as Ray tasks (HWNAS_RAY_ADDRESS), as a job's run: the weight phase,
    then every budget side by side; each unit's events in its folder's events.jsonl. Paths are
    absolute, since the tasks run in other directories (and on other machines, where `out` and
    the dataset must be on a volume every node sees)."""
    from search.request import build_requests
    from service.worker.executors import (
        ClusterUnavailable,
        UnitResources,
        UnitsFailed,
        run_on_ray,
    )
    from service.worker.units import FileSink, search_units

    out = out.resolve()
    dataset = Path(req["dataset"])
    document = {**req, "dataset": str(dataset.resolve()) if dataset.exists() else req["dataset"]}
    config = settings()
    first, side_by_side = search_units(
        document,
        build_requests(document, out),
        out,
        database_url=config.database_url,
        dataset=document["dataset"],
        sink=FileSink(),
    )
    names = ", ".join(unit.name for unit in [*first, *side_by_side])
    stdout.print(f"on Ray ({config.ray_address}): {names}; progress in each one's events.jsonl")
    try:
        results = run_on_ray(
            config.ray_address,
            first,
            side_by_side,
            resources=UnitResources.of(config),
            check_cancelled=lambda: None,
        )
    except (UnitsFailed, ClusterUnavailable) as exc:
        raise EnvironmentProblem(str(exc)) from None
    return [(budget, Path(run_dir), metrics) for budget, run_dir, metrics in results]


# request-document keys -> the flags that set them, for messages from search.request
FLAGS = {"child_shift_px": "--child-shift", "budgets": "--latency-ms"}
KEY = re.compile(
    r"\b(" + "|".join(sorted([*BOUNDS, "arch_lr", *MEMORY_BUDGETS], key=len, reverse=True)) + r")\b"
)


def as_flags(message: str) -> str:
    """A message of the search request naming its keys, with the CLI's flags instead."""
    return KEY.sub(lambda m: FLAGS.get(m[1], "--" + m[1].replace("_", "-")), message)


def _export_formats(text: str | None) -> list[str]:
    if not text:
        return []
    from deploy.formats import parse_formats

    with user_errors():
        return parse_formats(text)


def _run(request: Any, store: Any, run_dir: Path, data: Any, handler: Any) -> dict[str, Any]:
    from search.run import run_search

    return run_search(request, store, run_dir, data=data, on_event=handler)


def _progress_handler(progress: Any, task: Any, log: Any) -> Any:
    def handle(event: dict[str, Any]) -> None:
        log.write(json.dumps(event, default=str) + "\n")
        log.flush()
        kind = event.get("type")
        if kind == "search":
            lat = " ".join(f"{v:.4f}ms" for v in event["expected_latency_ms"].values())
            temp = f" τ {event['temperature']:.2f}" if "temperature" in event else ""
            if event.get("phase") == "architecture":
                status = (
                    f"budget {event['budget_ms']} ms: step {event['arch_step']}/"
                    f"{event['arch_steps']} E[lat] {lat}{temp}"
                )
            else:
                status = (
                    f"{'weights: ' if event.get('phase') else ''}epoch {event['epoch']}/"
                    f"{event['epochs']} loss {event['loss']:.3f} acc {event['accuracy']:.3f}"
                    + (f" E[lat] {lat}{temp}" if lat else "")
                )
            progress.update(task, total=event["steps"], completed=event["step"], status=status)
        elif kind == "trial":
            progress.update(
                task,
                total=event["trials"],
                completed=event["trial"],
                status=f"trial acc {event['accuracy']:.3f}",
            )
        elif kind == "train":
            progress.update(
                task,
                description="training child",
                total=event["epochs"],
                completed=event["epoch"],
                status=f"val acc {event['accuracy']:.3f}",
            )
        elif kind == "resumed":
            stderr.print(f"resumed at step {event['step']}")
        elif kind == "warning":
            where = f" (budget {event['budget_ms']} ms)" if "budget_ms" in event else ""
            stderr.print(f"warning{where}: {event['message']}", markup=False)

    return handle
