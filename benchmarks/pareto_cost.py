"""pareto_cost: what do five budgets cost through one shared supernet against five separate
searches, and do the shared weights cost accuracy?

On mnist5k and fbnet-tiny with this machine's onnxruntime LUT (1 thread, calibrated), at
`--fractions` of the space's predicted latency range (five by default), per strategy: the five
budgets searched separately (`run_search`, one whole search each) and through one supernet
(`search.shared.run_shared_search`: one weight phase, then each budget's architecture phase on
the shared weights), every result's child trained from scratch alike. It reports each phase's
wall and CPU time — the weight phase, each architecture phase, each separate search, the
children — and each budget's test accuracy and predicted latency both ways. Goal: the shared
search ≤ 2× one single-budget search (the children, trained either way, come on top).

    python benchmarks/pareto_cost.py --strategies hardcore,fbnet --epochs 3

Writes benchmarks/results/pareto_cost.json and .md (pareto_cost_smoke.* with --smoke),
rewritten after each strategy. Finished runs are cached in the workdir; an unfinished shared
run restarts, so its wall time is whole (separate searches: as the other search benchmarks).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from statistics import mean
from typing import Any

import _common as c

from search.request import build_requests
from search.shared import default_arch_steps, run_shared_search
from search.train import steps_per_epoch

NAME = "pareto_cost"
GOAL = 2.0
SMOKE = {"strategies": "hardcore", "epochs": 1, "calibration": 4, "fractions": "0.3,0.7"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    c.add_common_args(p, "hardcore", epochs=3)
    p.add_argument(
        "--fractions",
        default="0.2,0.35,0.5,0.65,0.8",
        help="budgets, as shares of the way from the smallest to the largest predicted latency",
    )
    p.add_argument("--arch-steps", type=int, default=None, help="per budget (default: library's)")
    return c.parse(p, SMOKE)


def _load() -> float:
    return os.getloadavg()[0]


def separate(
    bench: c.Bench, args: argparse.Namespace, strategy: str, budgets: list[float]
) -> list[dict[str, Any]]:
    """One whole search per budget (cached per budget); each with the CPU time of its call."""
    rows = []
    for budget in budgets:
        out = c.run_dir(args, NAME, budget, f"{strategy}-separate")
        cpu = out / "call_cpu.json"
        if not cpu.exists():
            shutil.rmtree(out, ignore_errors=True)
        load, start = _load(), time.process_time()
        metrics = c.search(bench, args, strategy, budget, out)
        if not cpu.exists():
            cpu.write_text(json.dumps({"cpu_s": time.process_time() - start, "load": load}))
        call = json.loads(cpu.read_text())
        rows.append(_row(budget, metrics, call["cpu_s"] - metrics["search_cpu_s"], call["load"]))
    return rows


def shared(
    bench: c.Bench, args: argparse.Namespace, strategy: str, budgets: list[float]
) -> dict[str, Any]:
    """The budgets through one supernet (cached when every budget finished)."""
    method = f"{strategy}-shared" + (f"-a{args.arch_steps}" if args.arch_steps else "")
    out = c.run_dir(args, NAME, None, method) / _tag(budgets)
    done = out / "call.json"
    if not done.exists():
        shutil.rmtree(out, ignore_errors=True)  # restarted whole, so its wall time is whole
        name, options = c.strategy_of(strategy)
        doc = {
            "space": c.SPACE,
            "dataset": c.dataset_of(args),
            "devices": [c.DEVICE],
            "budgets": budgets,
            "strategy": name,
            "options": options,
            "epochs": args.epochs,
            "warmup_epochs": args.warmup_epochs,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "child_epochs": args.child_epochs,
            "arch_steps": args.arch_steps,
        }
        c.log(f"{strategy}: {len(budgets)} budgets on one supernet -> {out}")
        load, wall, cpu = _load(), time.perf_counter(), time.process_time()
        results = run_shared_search(build_requests(doc, out), bench.store, out, data=bench.data)
        call = {
            "wall_s": time.perf_counter() - wall,
            "cpu_s": time.process_time() - cpu,
            "load": load,
            "runs": [str(run_dir) for _, run_dir, _ in results],
        }
        done.write_text(json.dumps(call, indent=1))
    call = json.loads(done.read_text())
    metrics = [json.loads((Path(run) / "metrics.json").read_text()) for run in call["runs"]]
    record = metrics[0]["shared_supernet"]
    search_cpu = record["weights_cpu_s"] + sum(m["search_cpu_s"] for m in metrics)
    return {
        "weights_wall_s": record["weights_wall_s"],
        "weights_cpu_s": record["weights_cpu_s"],
        "weight_steps": record["weight_steps"],
        "arch_steps": record["arch_steps"],
        "latency_range_ms": record["latency_range_ms"],
        "load": call["load"],
        "budgets": [_row(b, m, None, None) for b, m in zip(budgets, metrics, strict=True)],
        "children_cpu_s": call["cpu_s"] - search_cpu,
    }


def _tag(budgets: list[float]) -> str:
    return "b" + "_".join(f"{b:.6f}" for b in budgets)


def _row(
    budget: float, metrics: dict[str, Any], child_cpu: float | None, load: float | None
) -> dict[str, Any]:
    return {
        "budget_ms": budget,
        "arch": metrics["arch"],
        "test_accuracy": metrics["test_accuracy"],
        "predicted_ms": metrics["predicted_latency_ms"][c.DEVICE],
        "search_wall_s": metrics["search_wall_s"],
        "search_cpu_s": metrics["search_cpu_s"],
        "child_wall_s": metrics["train_wall_s"],
        "child_cpu_s": child_cpu,
        "load": load,
    }


def summarise(rows: list[dict[str, Any]], one: dict[str, Any]) -> dict[str, Any]:
    single_wall = mean(r["search_wall_s"] for r in rows)
    single_cpu = mean(r["search_cpu_s"] for r in rows)
    arch = one["budgets"]
    shared_wall = one["weights_wall_s"] + sum(r["search_wall_s"] for r in arch)
    shared_cpu = one["weights_cpu_s"] + sum(r["search_cpu_s"] for r in arch)
    deltas = [s["test_accuracy"] - r["test_accuracy"] for s, r in zip(arch, rows, strict=True)]
    return {
        "single_search_wall_s": single_wall,
        "single_search_cpu_s": single_cpu,
        "separate_search_wall_s": sum(r["search_wall_s"] for r in rows),
        "separate_children_wall_s": sum(r["child_wall_s"] for r in rows),
        "shared_search_wall_s": shared_wall,
        "shared_search_cpu_s": shared_cpu,
        "shared_children_wall_s": sum(r["child_wall_s"] for r in arch),
        "ratio_wall": shared_wall / single_wall,
        "ratio_cpu": shared_cpu / single_cpu,
        "mean_accuracy_delta_pp": 100 * mean(deltas),
        "accuracy_deltas_pp": [100 * d for d in deltas],
    }


def markdown(meta: dict[str, Any], results: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"# pareto_cost — {meta['cpu']}, torch {meta['torch_threads']} thread(s), {meta['date']}",
        "",
        f"mnist5k, fbnet-tiny, {len(meta['budgets_ms'])} budgets at "
        f"{', '.join(meta['fractions'])} of the calibrated LUT's range "
        f"({', '.join(f'{b:.4f}' for b in meta['budgets_ms'])} ms); {meta['epochs']} search "
        f"epochs ({meta['warmup_epochs']} warm-up in a separate search; the shared weight "
        f"phase trains all {meta['epochs']}), children {meta['child_epochs']} epochs from "
        f"scratch, seed {meta['seed']}. Goal: the shared search ≤ {GOAL:g}× one single-budget "
        "search (the children, the same work either way, on top). CPU time is the process's, "
        "less disturbed than wall time by other work on the machine (load: 1-minute load "
        "average at the start).",
    ]
    for r in results:
        s, one, rows = r["summary"], r["shared"], r["separate"]
        loads = ", ".join(f"{x['load']:.1f}" for x in rows)
        separate_share = s["separate_search_wall_s"] / s["single_search_wall_s"]
        lines += [
            "",
            f"## {r['strategy']}",
            "",
            "| phase | wall s | CPU s |",
            "|---|---|---|",
            f"| one single-budget search (mean of {len(rows)}) | {s['single_search_wall_s']:.0f} "
            f"| {s['single_search_cpu_s']:.0f} |",
            f"| {len(rows)} separate searches | {s['separate_search_wall_s']:.0f} | "
            f"{sum(x['search_cpu_s'] for x in rows):.0f} |",
            f"| shared: weight phase ({one['weight_steps']} steps) | "
            f"{one['weights_wall_s']:.0f} | {one['weights_cpu_s']:.0f} |",
        ]
        lines += [
            f"| shared: architecture phase @ {b['budget_ms']:.4f} ms ({one['arch_steps']} "
            f"steps) | {b['search_wall_s']:.0f} | {b['search_cpu_s']:.0f} |"
            for b in one["budgets"]
        ]
        lines += [
            f"| **shared search, all budgets** | **{s['shared_search_wall_s']:.0f}** | "
            f"**{s['shared_search_cpu_s']:.0f}** |",
            f"| children, separate | {s['separate_children_wall_s']:.0f} | "
            f"{sum(x['child_cpu_s'] for x in rows):.0f} |",
            f"| children, shared | {s['shared_children_wall_s']:.0f} | "
            f"{one['children_cpu_s']:.0f} |",
            "",
            f"Shared search / one single search: **{s['ratio_wall']:.2f}×** wall, "
            f"**{s['ratio_cpu']:.2f}×** CPU (goal ≤ {GOAL:g}×: "
            f"{'met' if s['ratio_wall'] <= GOAL else 'not met'} in wall time, "
            f"{'met' if s['ratio_cpu'] <= GOAL else 'not met'} in CPU time); the "
            f"{len(rows)} separate searches took {separate_share:.1f}×. "
            f"Load at the start: separate {loads}; "
            f"shared {one['load']:.1f}.",
            "",
            "| budget ms | separate: test acc | predicted ms | shared: test acc | predicted ms "
            "| Δ acc (pp) | separate arch | shared arch |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for a, b in zip(rows, one["budgets"], strict=True):
            lines.append(
                f"| {a['budget_ms']:.4f} | {a['test_accuracy']:.4f} | {a['predicted_ms']:.4f} | "
                f"{b['test_accuracy']:.4f} | {b['predicted_ms']:.4f} | "
                f"{100 * (b['test_accuracy'] - a['test_accuracy']):+.1f} | "
                f"`{a['arch'].split(':')[1]}` | `{b['arch'].split(':')[1]}` |"
            )
        lines += [
            "",
            f"Mean Δ accuracy (shared − separate): {s['mean_accuracy_delta_pp']:+.2f} pp "
            "(one seed; on mnist5k's 1,000 test images one image is 0.1 pp, and one seed's "
            "spread is ~0.4 pp: see search_quality_power).",
        ]
    return lines


def main() -> None:
    args = parse_args()
    args.fractions = [f for f in args.fractions.split(",") if f]
    bench = c.open_bench(args)
    _, model = c.prepare_space(bench, c.SPACE)
    lo, hi = model.min_latency_ms, model.max_latency_ms
    budgets = [round(lo + float(f) * (hi - lo), 6) for f in args.fractions]
    per_epoch = steps_per_epoch(bench.data.train, args.batch_size)
    meta = {
        **c.meta(args),
        "budgets_ms": budgets,
        "fractions": args.fractions,
        "epochs": args.epochs,
        "warmup_epochs": args.warmup_epochs,
        "child_epochs": args.child_epochs,
        "seed": args.seed,
        "steps_per_epoch": per_epoch,
        "goal": GOAL,
    }
    results = []
    for strategy in args.strategies:
        settings = c.settings(args, strategy)
        c.log(
            f"{strategy}: {default_arch_steps(settings, per_epoch, len(budgets))} architecture "
            "steps per budget by default"
        )
        one = shared(bench, args, strategy, budgets)
        rows = separate(bench, args, strategy, budgets)
        summary = summarise(rows, one)
        results.append({"strategy": strategy, "separate": rows, "shared": one, "summary": summary})
        c.log(
            f"{strategy}: shared search {summary['shared_search_wall_s']:.0f} s, single "
            f"{summary['single_search_wall_s']:.0f} s ({summary['ratio_wall']:.2f}×, CPU "
            f"{summary['ratio_cpu']:.2f}×), Δ acc {summary['mean_accuracy_delta_pp']:+.2f} pp"
        )
        c.write_results(NAME, args, {"meta": meta, "results": results}, markdown(meta, results))


if __name__ == "__main__":
    main()
