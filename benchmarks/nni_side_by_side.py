"""nni_side_by_side: NNI's one-shot strategies (ProxylessNAS, GumbelDARTS, DARTS; NNI 3, in a
virtual environment of their own) beside hwnas's hardcore, on the same space, data, LUT, budgets
and child protocol.

hwnas exports `--space` candidate for candidate (OpSpecs and this machine's calibrated
onnxruntime LUT costs, from the search benchmarks' workdir) and the `--dataset` splits; NNI's
strategies search it with the LUT as NNI's `ExpectationProfilerPenalty` (baseline the budget,
linear, added with weight `--scale`: NNI's ProxylessNAS example's `add#linear` regulariser with
its default λ = 0.1, the budget as reference latency); each architecture NNI exports is mapped back
to `space.build(arch)`, trained with search_quality's child protocol and measured end to end.
hardcore is search_quality's shared-supernet job for the same budgets and seed (cached there).

    python benchmarks/nni_side_by_side.py            # creates /tmp/hwnas-nni/venv once
    python benchmarks/nni_side_by_side.py --smoke    # a few batches per epoch

Writes benchmarks/results/nni_side_by_side.json and .md (nni_side_by_side_smoke.* with --smoke).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import _common as c
import search_quality as sq
import torch
from nni_side import exchange, nni_env
from torch.utils.data import TensorDataset

NAME = "nni_side_by_side"
NNI_METHODS = ("nni-proxyless", "nni-gumbel", "nni-darts")
SMOKE = {"epochs": 1, "warmup_epochs": 0, "child_epochs": 1, "limit_batches": 4}
SMOKE_SIZES = {"train": 512, "val": 256, "test": 512}
RUN_NNI = Path(__file__).resolve().parent / "nni_side" / "run_nni.py"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-nni"), help="venv, runs")
    p.add_argument(
        "--bench-workdir",
        type=Path,
        default=Path("/tmp/hwnas-search-bench"),
        help="the search benchmarks' workdir: its calibrated LUT, search_quality's cached runs",
    )
    p.add_argument("--space", default="proxyless-tiny")
    p.add_argument("--dataset", default="cluttered-mnist")
    p.add_argument("--fractions", default="0.3,0.55,0.8", help="budgets, min→max predicted")
    p.add_argument("--strategies", default="nni-proxyless,nni-gumbel", help=", ".join(NNI_METHODS))
    p.add_argument("--epochs", type=int, default=2, help="search epochs (NNI and hardcore)")
    p.add_argument("--warmup-epochs", type=int, default=0, help="epochs without arch steps")
    p.add_argument("--child-epochs", type=int, default=2)
    p.add_argument("--child-shift", type=int, default=2, help="pixels (0: no augmentation)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=0.1, help="NNI penalty weight")
    p.add_argument("--tag", default="", help="suffix of the result files")
    p.add_argument(
        "--limit-batches",
        type=int,
        default=10,
        help="train (and val) batches per NNI search epoch (0: all); hardcore's epochs are whole",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="one epoch, a few batches, small splits, on a copy of the bench workdir's database",
    )
    if p.parse_known_args()[0].smoke:
        p.set_defaults(**SMOKE)
    args = p.parse_args()
    args.strategies = [s for s in args.strategies.split(",") if s]
    unknown = set(args.strategies) - set(NNI_METHODS)
    if unknown:
        p.error(f"unknown strategies {sorted(unknown)}; choose from {', '.join(NNI_METHODS)}")
    args.warmup_epochs = max(0, min(args.warmup_epochs, args.epochs - 1))
    return args


def bench_args(args: argparse.Namespace) -> argparse.Namespace:
    """The namespace search_quality's and _common's functions read: the search benchmarks'
    workdir (its LUT and cached runs) with this run's search and child settings."""
    return argparse.Namespace(
        smoke=False,  # the workdir's full-protocol LUT; --smoke only shortens the training
        drift_reference=False,
        calibration=20,
        workdir=args.bench_workdir,
        dataset=args.dataset,
        space=args.space,
        epochs=args.epochs,
        warmup_epochs=args.warmup_epochs,
        child_epochs=args.child_epochs,
        child_shift=args.child_shift,
        batch_size=args.batch_size,
        seed=args.seed,
    )


def smoke_bench(args: argparse.Namespace) -> None:
    """--smoke works on a backup of the bench workdir's database (its LUT and calibration) in
    its own workdir, so its short runs never land in the search benchmarks' cache."""
    source = args.bench_workdir / "bench.db"
    args.bench_workdir = args.workdir / "smoke-bench"
    args.bench_workdir.mkdir(parents=True, exist_ok=True)
    target = args.bench_workdir / "bench.db"
    if not target.exists():
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)


def smoke_data(data: Any) -> Any:
    """The first `SMOKE_SIZES` images of each split."""
    cut = {
        split: TensorDataset(*(t[:n] for t in getattr(data, split).tensors))
        for split, n in SMOKE_SIZES.items()
    }
    return dataclasses.replace(data, **cut)


def run_dir(args: argparse.Namespace, budget_ms: float, method: str) -> Path:
    config = ("smoke-" if args.smoke else "") + (
        f"{args.space}-{args.dataset}-e{args.epochs}w{args.warmup_epochs}c{args.child_epochs}"
        f"b{args.batch_size}s{args.seed}x{args.child_shift}l{args.limit_batches}"
    )
    scale = f"-scale{args.scale:g}" if method.startswith("nni-") else ""
    return args.workdir / "runs" / config / f"{budget_ms:.6f}ms" / f"{method}{scale}"


def nni_search(args: argparse.Namespace, doc: dict, data: Path, method: str, budget: float) -> dict:
    """One NNI search in its venv's python (cached in its run directory)."""
    out_dir = run_dir(args, budget, method)
    done = out_dir / "nni.json"
    if done.exists():
        return dict(json.loads(done.read_text()))
    out_dir.mkdir(parents=True, exist_ok=True)
    job = {
        "space": doc,
        "data": str(data),
        "strategy": method,
        "budget_ms": budget,
        "scale": args.scale,
        "epochs": args.epochs,
        "warmup_epochs": args.warmup_epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "limit_batches": args.limit_batches or None,
    }
    (out_dir / "job.json").write_text(json.dumps(job))
    c.log(f"{method} @ {budget:.4f} ms: NNI search, {args.epochs} epochs -> {out_dir}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [str(nni_env.venv_python(args.workdir)), str(RUN_NNI), str(out_dir / "job.json")]
    with (out_dir / "nni.log").open("w") as log:
        code = subprocess.run([*cmd, str(done)], stdout=log, stderr=log, env=env).returncode
    if code != 0:
        raise SystemExit(f"{method} @ {budget:.4f} ms: NNI's search exited {code}; see {log.name}")
    return dict(json.loads(done.read_text()))


def nni_row(
    bench: c.Bench,
    args: argparse.Namespace,
    space: Any,
    model: Any,
    found: dict,
    method: str,
    budget: float,
) -> dict[str, Any]:
    """NNI's architecture as an hwnas child: trained with the child protocol, measured."""
    arch = exchange.arch_of(space, found["choices"])
    done = run_dir(args, budget, method) / "child.json"
    child = sq.train_cached(bench_args(args), bench.data, space, arch, args.seed, done)
    measured = c.measure_text(bench, space, arch)
    row = sq.row(
        method, arch, child["test_accuracy"], model.cost(c.choices_of(space, arch)), measured
    )
    row.update(
        search_wall_s=found["search_wall_s"],
        search_cpu_s=found["search_cpu_s"],
        nni_expected_latency_ms=found["expected_latency_ms"],
        penalty_scale=args.scale,
    )
    return row


def hardcore_rows(
    bench: c.Bench, args: argparse.Namespace, space: Any, budgets: list[float]
) -> list[dict]:
    """search_quality's shared-supernet hardcore job for these budgets and seed (its cache)."""
    job = sq.shared_job(bench, bench_args(args), "hardcore", budgets)
    rows = []
    for i, m in enumerate(job):
        measured = c.measure_text(bench, space, m["arch"])
        row = sq.row(
            "hardcore", m["arch"], m["test_accuracy"], m["predicted_latency_ms"][c.DEVICE], measured
        )
        shared = m["shared_supernet"]
        row.update(
            search_wall_s=sq.share_wall_s(job, i),
            search_cpu_s=float(shared["weights_cpu_s"]) / len(job) + float(m["search_cpu_s"]),
        )
        rows.append(row)
    return rows


def nni_settings(args: argparse.Namespace) -> str:
    """What NNI's searches ran with besides the shared settings: NNI's own defaults."""
    batches = f"{args.limit_batches} batches" if args.limit_batches else "whole epochs"
    return (
        f"NNI epochs of {batches} (hardcore: whole epochs), NNI's defaults otherwise: "
        "Classification evaluator (Adam, lr 1e-3), architecture Adam lr 3e-4, argmax export"
    )


def with_ratios(row: dict[str, Any], budget: float) -> dict[str, Any]:
    return {
        **row,
        "budget_ms": budget,
        "predicted_over_budget": row["predicted_ms"] / budget,
        "measured_over_budget": row["measured_ms"] / budget,
    }


def markdown(payload: dict[str, Any]) -> list[str]:
    m = payload["meta"]
    lines = [
        f"# {NAME}",
        "",
        f"{m['space']} on {m['dataset']} (synthetic), {m['backend']} LUT (calibrated), seed "
        f"{m['seed']}. Search {m['epochs']} epochs ({m['warmup_epochs']} warm-up); every child "
        f"trained {m['child_epochs']} epochs with shifts up to {m['child_shift_px']} px and "
        f"measured end to end. NNI {m['nni_env'].get('nni', '?')}: penalty "
        f"`ExpectationProfilerPenalty` on the LUT, baseline = budget, linear, added × "
        f"{m['penalty_scale']:g}; {m['nni_settings']}.",
        "",
        "| budget ms | method | test acc | predicted / budget | measured / budget "
        "| search wall s | search CPU s | arch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in payload["results"]:
        lines.append(
            f"| {r['budget_ms']:.4f} | {r['method']} | {r['test_accuracy']:.4f} "
            f"| {r['predicted_over_budget']:.2f} | {r['measured_over_budget']:.2f} "
            f"| {r['search_wall_s']:.0f} | {r['search_cpu_s']:.0f} "
            f"| `{r['arch'].split(':', 1)[1]}` |"
        )
    return lines


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)  # the other core is someone else's
    args.workdir.mkdir(parents=True, exist_ok=True)
    versions = nni_env.ensure_venv(args.workdir, c.log)
    if args.smoke:
        smoke_bench(args)
    bench = c.open_bench(bench_args(args))
    if args.smoke:
        bench.data = smoke_data(bench.data)
    space, model = c.prepare_space(bench, args.space)
    lo, hi = model.min_latency_ms, model.max_latency_ms
    budgets = [lo + float(f) * (hi - lo) for f in args.fractions.split(",")]
    c.log(f"budgets {[round(b, 4) for b in budgets]} ms")
    doc = exchange.space_document(space, model)
    prefix = "smoke-" if args.smoke else ""
    data = exchange.write_splits(bench.data, args.workdir / f"{prefix}{args.dataset}-splits.npz")
    results = []
    hardcore = hardcore_rows(bench, args, space, budgets)
    for budget, hard in zip(budgets, hardcore, strict=True):
        results.append(with_ratios(hard, budget))
        for method in args.strategies:
            found = nni_search(args, doc, data, method, budget)
            row = nni_row(bench, args, space, model, found, method, budget)
            results.append(with_ratios(row, budget))
    meta = {
        **c.meta(bench_args(args)),
        "space": args.space,
        "seed": args.seed,
        "epochs": args.epochs,
        "warmup_epochs": args.warmup_epochs,
        "child_epochs": args.child_epochs,
        "child_shift_px": args.child_shift,
        "batch_size": args.batch_size,
        "limit_batches": args.limit_batches or None,
        "penalty_scale": args.scale,
        "fractions": args.fractions,
        "space_range_ms": [lo, hi],
        "nni_env": versions,
        "nni_settings": nni_settings(args),
    }
    payload = {"budgets_ms": budgets, "results": results, "meta": meta}
    c.write_results(NAME, args, payload, markdown(payload))


if __name__ == "__main__":
    main()
