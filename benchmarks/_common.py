"""Shared helpers of the search benchmarks (search_quality, constraint_satisfaction, search_cost):
this machine's onnxruntime LUT of a space in the benchmark's own database (resumable), its
calibration on end-to-end runs, end-to-end measurement of results, cached search runs, outputs."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from _record import run_markdown, with_run

from lut.measurement import Measurement
from lut.predictor import features, fit_calibration
from lut.store import Device, LutStore
from profilers.base import ProfilerBackend, cpu_model, create_backend
from profilers.e2e import measure_into_store, measure_network
from profilers.protocol import QUICK, MeasureProtocol
from profilers.runner import profile_specs
from search.cost import LatencyCostModel, build_cost_model
from search.data import load_dataset
from search.request import SearchRequest, SearchSettings
from search.run import bind_space, run_search
from search.spaces.base import Architecture, SearchSpace
from search.strategies.base import parse_options

RESULTS = Path(__file__).resolve().parent / "results"
DEVICE = "bench-onnxruntime"
BACKEND = "onnxruntime"
DATASET = "mnist5k"
SPACE = "fbnet-tiny"
CALIBRATION_SEED = 1000


def dataset_of(args: argparse.Namespace) -> str:
    """The benchmark's dataset: its `--dataset` where it has one, else mnist5k."""
    return str(getattr(args, "dataset", None) or DATASET)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def add_common_args(p: argparse.ArgumentParser, strategies: str, epochs: int) -> None:
    p.add_argument(
        "--strategies",
        default=strategies,
        help="comma-separated strategies; NAME:KEY=VALUE[:KEY=VALUE] passes options "
        "(e.g. hardcore:relaxation=hard)",
    )
    p.add_argument("--epochs", type=int, default=epochs, help="search epochs")
    p.add_argument("--warmup-epochs", type=int, default=1, help="(at most epochs - 1)")
    p.add_argument("--child-epochs", type=int, default=None, help="default: --epochs")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calibration", type=int, default=20, help="end-to-end runs to calibrate on")
    p.add_argument("--workdir", type=Path, default=None, help="default /tmp/hwnas-search-bench")
    p.add_argument("--smoke", action="store_true", help="tiny configuration, quick protocol")
    p.add_argument(
        "--drift-reference",
        action="store_true",
        help="measure the LUT and end-to-end runs paired with a reference model (a new workdir)",
    )
    p.add_argument("--tag", default="", help="suffix of the result files")
    p.add_argument(
        "--only-cached",
        default="",
        help="comma-separated strategies reported only where their run is already finished in "
        "the workdir, never started (for runs cut short)",
    )


def parse(p: argparse.ArgumentParser, smoke: dict[str, Any]) -> argparse.Namespace:
    """Parse the flags; `--smoke` swaps in the `smoke` defaults (explicit flags still win)."""
    if p.parse_known_args()[0].smoke:
        p.set_defaults(**smoke)
    return finish_args(p.parse_args())


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """Defaults that depend on other flags; the smoke run gets its own workdir, since its
    quick-protocol LUT must never be reused by a full run."""
    if args.workdir is None:
        suffix = "-smoke" if args.smoke else ""
        args.workdir = Path(f"/tmp/hwnas-search-bench{suffix}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.strategies = [s for s in args.strategies.split(",") if s]
    args.only_cached = {s for s in args.only_cached.split(",") if s}
    args.child_epochs = args.child_epochs or args.epochs
    args.warmup_epochs = max(0, min(args.warmup_epochs, args.epochs - 1))
    return args


@dataclass
class Bench:
    store: LutStore
    backend: ProfilerBackend
    data: Any
    workdir: Path
    calibration_count: int

    @property
    def device(self) -> Device:
        return self.store.resolve_device(DEVICE, BACKEND)


def open_bench(args: argparse.Namespace) -> Bench:
    store = LutStore(f"sqlite:///{args.workdir / 'bench.db'}")
    protocol = replace(
        QUICK if args.smoke else MeasureProtocol(), drift_reference=args.drift_reference
    )
    backend = create_backend(
        BACKEND, threads=1, cache_dir=args.workdir / "cache", protocol=protocol
    )
    data = load_dataset(dataset_of(args), seed=0, resolution=28)
    return Bench(store, backend, data, args.workdir, args.calibration)


def prepare_space(bench: Bench, space_text: str) -> tuple[SearchSpace, LatencyCostModel]:
    """The space bound to the data, its LUT (profiled where missing) and its calibration fitted on
    `calibration_count` random architectures measured end to end (resumable); its cost model."""
    space = bind_space(space_text, bench.data)
    specs = space.distinct_opspecs()
    report = profile_specs(
        bench.store,
        bench.backend,
        DEVICE,
        specs,
        on_start=lambda n: log(f"{space.spec_string}: profiling {n} ops") if n else None,
    )
    device = report.device
    archs = list(space.iter_random(seed=CALIBRATION_SEED, count=bench.calibration_count))
    measured = measure_archs(bench, space, archs)
    lut = bench.store.lookup(device, specs)
    assert device.fixed_costs is not None
    points = [
        (features(space.decode(a), lut, device.fixed_costs), measured[a.to_string()]) for a in archs
    ]
    calibration = fit_calibration(points, device.fixed_costs)
    bench.store.set_calibration(device, space.spec_string, calibration)
    log(
        f"{space.spec_string}: calibrated on {len(points)} runs, MAPE "
        f"{calibration.mape_before:.1f}% -> {calibration.mape_after:.1f}%"
    )
    return space, build_cost_model(bench.store, device, space)


def measure_archs(bench: Bench, space: SearchSpace, archs: list[Architecture]) -> dict[str, float]:
    """End-to-end medians (ms) with the backend's protocol, cached in the e2e table."""

    def logged(i: int, m: Measurement) -> None:
        log(f"  e2e {archs[i].to_string().split(':')[1]}: {m.median_ms:.4f} ms")

    return measure_into_store(
        bench.store, bench.device, bench.backend, space, archs, on_measured=logged
    )


def measure_text(bench: Bench, space: SearchSpace, text: str) -> float:
    arch = space.architecture(text.split(":", 1)[1].split("-"))
    return measure_archs(bench, space, [arch])[text]


def measure_rounds(
    bench: Bench, space: SearchSpace, texts: list[str], rounds: int
) -> dict[str, list[float]]:
    """Each architecture timed `rounds` times: its e2e-table run first, then `timed_rounds`,
    kept in the workdir's `e2e_rounds.json`."""
    first = {t: measure_text(bench, space, t) for t in texts}
    archs = {t: space.architecture(t.split(":", 1)[1].split("-")) for t in texts}
    path = bench.workdir / "e2e_rounds.json"
    return timed_rounds(bench.backend, space, archs, first, rounds, path)


def timed_rounds(
    backend: ProfilerBackend,
    space: SearchSpace,
    archs: dict[str, Architecture],
    first: dict[str, float],
    rounds: int,
    path: Path,
) -> dict[str, list[float]]:
    """Every architecture's latency per round: round 1 is `first`, later rounds time each one
    again in a fresh session, each round over all of them in its own shuffled order (a slow
    spell of the machine then falls on different networks each round). The later rounds are
    kept in the JSON file `path` (architecture → latencies), so an interrupted run resumes."""
    stored: dict[str, list[float]] = json.loads(path.read_text()) if path.exists() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    for r in range(1, rounds):
        order = sorted(archs)
        random.Random(r).shuffle(order)
        todo = [t for t in order if len(stored.get(t, [])) < r]
        for i, text in enumerate(todo, start=1):
            m = measure_network(backend, space, archs[text])
            stored.setdefault(text, []).append(m.median_ms)
            path.write_text(json.dumps(stored))
            log(
                f"  round {r + 1}/{rounds} {i}/{len(todo)} {text.split(':')[1]}: {m.median_ms:.4f} ms"
            )
    return {t: [first[t], *stored.get(t, [])[: rounds - 1]] for t in archs}


def strategy_of(label: str) -> tuple[str, dict[str, Any]]:
    """A benchmark's strategy label, `NAME` or `NAME:KEY=VALUE[:KEY=VALUE...]` (e.g.
    `hardcore:relaxation=hard`): the strategy and its options, read as `hwnas search --option`
    reads them. Runs are cached under the whole label, so each variant has its own."""
    name, *items = label.split(":")
    try:
        return name, parse_options(items)
    except ValueError as exc:
        raise SystemExit(f"strategy label {label!r}: {exc}") from None


def settings(args: argparse.Namespace, label: str) -> SearchSettings:
    strategy, options = strategy_of(label)
    return SearchSettings(
        strategy=strategy,
        strategy_options=options,
        epochs=args.epochs,
        warmup_epochs=args.warmup_epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )


def child_request(
    args: argparse.Namespace, strategy: str, budget_ms: float, trials: int, space_text: str
) -> SearchRequest:
    """One search's request: the search settings, and the child's epochs and shift."""
    return SearchRequest(
        space=space_text,
        dataset=dataset_of(args),
        devices=(DEVICE,),
        budgets_ms=(budget_ms,),
        settings=settings(args, strategy),
        child_epochs=args.child_epochs,
        child_shift_px=getattr(args, "child_shift", 0),
        trials=trials,
    )


def search(
    bench: Bench,
    args: argparse.Namespace,
    strategy: str,
    budget_ms: float,
    out_dir: Path,
    *,
    trials: int = 8,
    space_text: str = SPACE,
    rederive: bool = False,
) -> dict[str, Any]:
    """One whole search (search + child training) via `run_search`; a finished run's metrics are
    reused, an unfinished one is started afresh (so its wall times are whole).

    `rederive`: a finished search is not repeated but derived again by the current code from its
    final checkpoint, and that child trained; the first result is kept beside it as
    `metrics.before-rederive.json`, and the search wall time stays the search's own."""
    done = out_dir / "metrics.json"
    before = out_dir / REDERIVE_KEEP
    if rederive and (done.exists() or before.exists()):
        return _rederive(bench, args, strategy, budget_ms, out_dir, trials, space_text)
    if done.exists():
        return json.loads(done.read_text())
    shutil.rmtree(out_dir, ignore_errors=True)
    request = child_request(args, strategy, budget_ms, trials, space_text)
    log(f"{strategy} @ {budget_ms:.4f} ms -> {out_dir}")
    metrics = run_search(request, bench.store, out_dir, data=bench.data)
    log(
        f"  {strategy}: acc {metrics['test_accuracy']:.4f}, predicted "
        f"{metrics['predicted_latency_ms'][DEVICE]:.4f} ms, search {metrics['search_wall_s']:.0f} s"
    )
    return metrics


REDERIVE_KEEP = "metrics.before-rederive.json"


def _rederive(
    bench: Bench,
    args: argparse.Namespace,
    strategy: str,
    budget_ms: float,
    out_dir: Path,
    trials: int,
    space_text: str,
) -> dict[str, Any]:
    done, before = out_dir / "metrics.json", out_dir / REDERIVE_KEEP
    if done.exists():
        metrics = json.loads(done.read_text())
        if metrics.get("rederived"):
            return metrics
    if not (out_dir / "checkpoint.pt").exists():  # else run_search would search afresh
        raise RuntimeError(f"{out_dir} has no final checkpoint to derive again from")
    if done.exists():
        if before.exists():  # an interrupted rederive wrote its child's metrics: not the first
            done.unlink()
        else:
            os.replace(done, before)
    first = json.loads(before.read_text())
    log(f"{strategy} @ {budget_ms:.4f} ms: derived again from {out_dir}/checkpoint.pt")
    request = child_request(args, strategy, budget_ms, trials, space_text)

    def stop_if_unchanged(event: dict[str, Any]) -> None:
        if event["type"] == "derived" and event["arch"] == first["arch"]:
            raise _Derived(event["arch"])  # the same child: its training is deterministic

    try:
        metrics = run_search(
            request, bench.store, out_dir, data=bench.data, on_event=stop_if_unchanged
        )
        rederive_wall_s = metrics["search_wall_s"]
    except _Derived:
        metrics, rederive_wall_s = dict(first), None
    metrics.update(
        rederived=True,
        rederive_wall_s=rederive_wall_s,
        search_wall_s=first["search_wall_s"],
        arch_before_rederive=first["arch"],
    )
    done.write_text(json.dumps(metrics, indent=1))
    log(
        f"  {strategy}: {first['arch'].split(':')[1]} -> {metrics['arch'].split(':')[1]}, "
        f"acc {first['test_accuracy']:.4f} -> {metrics['test_accuracy']:.4f}"
    )
    return metrics


class _Derived(Exception):  # control flow, not an error
    def __init__(self, arch: str) -> None:
        self.arch = arch


def search_only(
    bench: Bench,
    args: argparse.Namespace,
    strategy: str,
    budget_ms: float,
    out_dir: Path,
    *,
    trials: int = 8,
) -> dict[str, Any]:
    """The search part of `run_search` alone: stopped at its `derived` event, before the child is
    trained. Returns the architecture and the search's wall time (from its `searching` state);
    cached in `out_dir/derived.json`."""
    done = out_dir / "derived.json"
    if done.exists():
        return json.loads(done.read_text())
    shutil.rmtree(out_dir, ignore_errors=True)
    started: list[float] = []

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "state" and event["state"] == "searching":
            started.append(time.perf_counter())
        if event["type"] == "derived":
            raise _Derived(event["arch"])

    request = child_request(args, strategy, budget_ms, trials, SPACE)  # stopped before the child
    log(f"{strategy} @ {budget_ms:.4f} ms (search only) -> {out_dir}")
    try:
        run_search(request, bench.store, out_dir, data=bench.data, on_event=on_event)
    except _Derived as derived:
        result = {"arch": derived.arch, "search_wall_s": time.perf_counter() - started[0]}
    else:
        raise RuntimeError("run_search finished without a `derived` event")
    done.write_text(json.dumps(result))
    return result


def skipped(args: argparse.Namespace, strategy: str, out_dir: Path, done_file: str) -> bool:
    """`--only-cached` strategies are left out where their run has not finished."""
    return strategy in args.only_cached and not (out_dir / done_file).exists()


def run_dir(args: argparse.Namespace, name: str, budget_ms: float | None, method: str) -> Path:
    """Where one cached run lives: every setting that changes its result is in the path."""
    config = (
        f"e{args.epochs}w{args.warmup_epochs}c{args.child_epochs}b{args.batch_size}s{args.seed}"
    )
    if getattr(args, "child_shift", 0):
        config += f"x{args.child_shift}"
    if dataset_of(args) != DATASET:
        config = f"{dataset_of(args)}-{config}"
    if getattr(args, "space", SPACE) != SPACE:
        config = f"{args.space}-{config}"
    budget = "any-budget" if budget_ms is None else f"{budget_ms:.6f}ms"
    return args.workdir / "runs" / name / config / budget / method


def choices_of(space: SearchSpace, arch: str) -> list[int]:
    tokens = arch.split(":", 1)[1].split("-")
    return [slot.candidates.index(t) for slot, t in zip(space.layers, tokens, strict=True)]


def meta(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
        "torch_threads": torch.get_num_threads(),
        "backend": f"{BACKEND}, 1 thread",
        "dataset": dataset_of(args),
        "smoke": bool(args.smoke),
        "drift_reference": bool(args.drift_reference),
        "argv": sys.argv[1:],
    }


def write_results(
    name: str, args: argparse.Namespace, payload: dict[str, Any], md: list[str]
) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"{name}_smoke" if args.smoke else f"{name}{args.tag}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(with_run(payload), indent=1, default=str))
    (RESULTS / f"{stem}.md").write_text("\n".join([*md, "", run_markdown()]) + "\n")
    log(f"wrote {RESULTS / stem}.json and .md")


def choice_share(arch: str, token: str = "skip") -> float:
    choices = arch.split(":", 1)[1].split("-")
    return sum(c == token for c in choices) / len(choices)
