"""search_cost: what does a search cost next to training the network it finds?

On mnist5k and fbnet-tiny with this machine's onnxruntime LUT (1 thread, calibrated), at one
budget (by default 0.55 of the way from the space's smallest to its largest predicted latency),
per strategy: the wall time and peak RSS of the search (`run_search` up to its derived
architecture) against training that derived child from scratch for the same number of epochs
(goal: search ≤ 3× the child's training). `ru_maxrss` is a lifetime peak, so each phase runs in a
fresh subprocess of this script, which reports its own peak and the RSS it had before the phase
began (interpreter, torch, data, database), so the phase's own share can be read off too.

    python benchmarks/search_cost.py

Writes benchmarks/results/search_cost.json and .md (search_cost_smoke.* with --smoke), rewritten
after each strategy. Finished strategies are cached in the workdir; an unfinished one restarts.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import _common as c
import torch

from search.spaces.base import parse_architecture
from search.strategies.baseline import PROXY_EPOCHS
from search.train import train_child

NAME = "search_cost"
GOAL = 3.0
SMOKE = {"strategies": "proxyless,random", "epochs": 1, "trials": 2, "calibration": 4}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    c.add_common_args(p, "hardcore,fbnet,proxyless,evolution,random", epochs=10)
    p.add_argument("--fraction", type=float, default=0.55, help="budget, min→max predicted")
    p.add_argument("--budget-ms", type=float, default=None, help="absolute budget (overrides)")
    p.add_argument("--trials", type=int, default=8, help="candidates of random / evolution")
    p.add_argument("--phase", choices=("search", "child"), help=argparse.SUPPRESS)
    p.add_argument("--strategy", help=argparse.SUPPRESS)
    p.add_argument("--arch", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return c.parse(p, SMOKE)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def phase(args: argparse.Namespace) -> None:
    """In the subprocess: one measured phase; its result is the last line of stdout."""
    bench = c.open_bench(args)
    before = peak_rss_mb()
    if args.phase == "search":
        derived = c.search_only(
            bench, args, args.strategy, args.budget_ms, args.out, trials=args.trials
        )
        result: dict[str, Any] = {"arch": derived["arch"], "wall_s": derived["search_wall_s"]}
    else:
        space, arch = parse_architecture(args.arch)
        torch.manual_seed(args.seed)
        d = bench.data
        trained = train_child(
            space.build(arch),
            d.train,
            d.val,
            epochs=args.child_epochs,
            seed=args.seed,
            batch_size=args.batch_size,
            test=d.test,
        )
        result = {"wall_s": trained.wall_s, "test_accuracy": trained.test_accuracy}
    result.update(rss_before_mb=before, peak_rss_mb=peak_rss_mb())
    print(json.dumps(result), flush=True)


def spawn(args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    """Run one phase in a fresh interpreter (it inherits nice, affinity and the environment)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--workdir", str(args.workdir)]
    flags = (
        "epochs",
        "warmup_epochs",
        "child_epochs",
        "batch_size",
        "seed",
        "trials",
        "calibration",
    )
    for flag in flags:
        command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    done = subprocess.run([*command, *extra], stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(args: argparse.Namespace, strategy: str, budget: float) -> dict[str, Any]:
    base = c.run_dir(args, NAME, budget, f"{strategy}-t{args.trials}")
    cached = base / "cost.json"
    if cached.exists():
        return json.loads(cached.read_text())
    out = base / "search"
    shutil.rmtree(out, ignore_errors=True)  # a fresh search: its wall time must be whole
    c.log(f"{strategy}: search phase")
    search = spawn(
        args,
        "--phase",
        "search",
        "--strategy",
        strategy,
        "--out",
        str(out),
        "--budget-ms",
        repr(budget),
    )
    c.log(f"{strategy}: child phase ({args.child_epochs} epochs)")
    child = spawn(args, "--phase", "child", "--arch", search["arch"])
    result = {
        "strategy": strategy,
        "arch": search["arch"],
        "trials": args.trials if c.strategy_of(strategy)[0] in ("random", "evolution") else None,
        "search": search,
        "child": child,
        "ratio": search["wall_s"] / child["wall_s"],
    }
    base.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result, indent=1))
    return result


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"# search_cost — {meta['cpu']}, torch {meta['torch_threads']} thread(s), {meta['date']}",
        "",
        f"mnist5k, fbnet-tiny, budget {meta['budget_ms']:.4f} ms (predicted, calibrated LUT), "
        f"{meta['epochs']} search epochs ({meta['warmup_epochs']} warm-up), the child trained "
        f"{meta['child_epochs']} epochs; random / evolution: {meta['trials']} candidates of "
        f"{PROXY_EPOCHS} epoch(s). "
        f"Goal: search ≤ {GOAL:g}× the child's training. RSS: peak of the phase's process "
        "(in brackets: above the RSS it had before the phase began).",
        "",
        "| strategy | search s | child training s | search / child | ≤ 3× | search peak RSS MB | "
        "child peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, ch = r["search"], r["child"]
        lines.append(
            f"| {r['strategy']} | {s['wall_s']:.0f} | {ch['wall_s']:.0f} | {r['ratio']:.2f} | "
            f"{'yes' if r['ratio'] <= GOAL else 'no'} | {s['peak_rss_mb']:.0f} "
            f"(+{s['peak_rss_mb'] - s['rss_before_mb']:.0f}) | {ch['peak_rss_mb']:.0f} "
            f"(+{ch['peak_rss_mb'] - ch['rss_before_mb']:.0f}) |"
        )
    return lines


def main() -> None:
    args = parse_args()
    if args.phase:
        phase(args)
        return
    bench = c.open_bench(args)
    _, model = c.prepare_space(bench, c.SPACE)
    lo, hi = model.min_latency_ms, model.max_latency_ms
    budget = args.budget_ms if args.budget_ms is not None else lo + args.fraction * (hi - lo)
    meta = {
        **c.meta(args),
        "budget_ms": budget,
        "epochs": args.epochs,
        "warmup_epochs": args.warmup_epochs,
        "child_epochs": args.child_epochs,
        "trials": args.trials,
        "seed": args.seed,
        "goal": GOAL,
    }
    rows: list[dict[str, Any]] = []
    for strategy in args.strategies:
        rows.append(measure(args, strategy, budget))
        r = rows[-1]
        c.log(
            f"{strategy}: search {r['search']['wall_s']:.0f} s, child {r['child']['wall_s']:.0f} s"
        )
        c.write_results(NAME, args, {"meta": meta, "results": rows}, markdown(meta, rows))


if __name__ == "__main__":
    main()
