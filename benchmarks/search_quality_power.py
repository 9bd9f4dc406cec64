"""search_quality_power: what can search_quality's verdict detect on its task?

search_quality judges "hardcore beats random and MobileNetV2 by more than two standard errors of
the per-seed paired difference at two of three budgets". Each accuracy is one trained network
scored on the test split, so it carries the split's binomial noise and the training's
seed-to-seed noise. This script takes that noise from a finished multi-seed run (the per-seed
spread of every method at every budget, pooled) and simulates the verdict: hardcore truly ahead
of two baselines by δ percentage points at every budget, every accuracy drawn around its true
mean with the pooled spread, independently (where seeds share noise, pairing by seed lowers the
spread of the differences, and the rates are then conservative). It prints how often the verdict holds for each δ and
number of seeds: the chance that a real advantage of δ shows, and (δ = 0) that none shows anyway.

    python benchmarks/search_quality_power.py

Reads benchmarks/results/search_quality.json by default (--runs: result stems in that folder), writes
benchmarks/results/search_quality_power.json and .md. No training, no measuring: a few seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _record import run_markdown, with_run

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_RUNS = "search_quality"  # the current multi-seed result
BUDGETS = 3
BASELINES = 2
BEATS_NEEDED = 2


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default=DEFAULT_RUNS, help="result stems with per-seed accuracies")
    p.add_argument("--deltas", default="0,0.1,0.2,0.3,0.5,0.75,1.0", help="true advantages, pp")
    p.add_argument("--seeds", default="2,4,8,16", help="seed counts to simulate")
    p.add_argument("--trials", type=int, default=20000, help="simulated benchmark runs per cell")
    p.add_argument("--tag", default="", help="suffix of the result files")
    return p.parse_args()


def seed_spreads(stem: str) -> list[dict[str, Any]]:
    """Per method and budget of one run: the per-seed accuracies' standard deviation (pp)."""
    path = RESULTS / f"{stem}.json"
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, KeyError, ValueError) as exc:
        raise SystemExit(f"search_quality_power: {path}: no per-seed results ({exc})") from None
    out = []
    for r in results:
        if len(r["per_seed"]) > 1:
            sd = 100 * statistics.stdev(r["per_seed"])
            n = len(r["per_seed"])
            out.append(
                {"run": stem, "budget_ms": r["budget_ms"], "method": r["method"], "n": n, "sd": sd}
            )
    if not out:
        raise SystemExit(f"search_quality_power: {path}: no method ran more than one seed")
    return out


def pooled_sd(spreads: list[dict[str, Any]]) -> float:
    """The root mean variance, weighted by degrees of freedom."""
    dof = sum(s["n"] - 1 for s in spreads)
    return math.sqrt(sum((s["n"] - 1) * s["sd"] ** 2 for s in spreads) / dof)


def claim_rate(delta: float, sd: float, seeds: int, trials: int, rng: Any) -> float:
    """How often the verdict holds when hardcore is truly `delta` pp ahead of both baselines at
    every budget, each accuracy of spread `sd`, over `seeds` paired seeds."""
    if seeds < 2:
        return 0.0  # no standard error from one seed
    ours = rng.normal(delta, sd, size=(trials, BUDGETS, 1, seeds))
    theirs = rng.normal(0.0, sd, size=(trials, BUDGETS, BASELINES, seeds))
    diffs = ours - theirs
    mean = diffs.mean(axis=3)
    se = diffs.std(axis=3, ddof=1) / math.sqrt(seeds)
    beats = (mean > 2 * se).all(axis=2)
    return float((beats.sum(axis=1) >= BEATS_NEEDED).mean())


def run_accuracy(stem: str) -> tuple[float, int]:
    """A run's mean test accuracy over every result, and its test split's size."""
    payload = json.loads((RESULTS / f"{stem}.json").read_text())
    accuracies = [a for r in payload["results"] for a in r["per_seed"]]
    return statistics.fmean(accuracies), int(payload["test_images"])


def binomial_sd(accuracy: float, images: int) -> float:
    return 100 * math.sqrt(accuracy * (1 - accuracy) / images)


def markdown(payload: dict[str, Any]) -> list[str]:
    sd, seeds = payload["pooled_sd_pp"], payload["seeds"]
    lines = [
        "# search_quality_power — what the search_quality verdict can detect",
        "",
        f"Per-seed spread of one method's test accuracy at one budget, pooled over "
        f"{payload['cells']} method × budget cells of {', '.join(payload['runs'])}: "
        f"**{sd:.2f} pp** (the {payload['test_images']:,}-image test split alone: "
        f"{payload['binomial_sd_pp']:.2f} pp at {payload['mean_accuracy']:.1%}). Chance that the "
        "verdict holds when hardcore is truly δ pp ahead of both baselines at all three budgets "
        f"(paired differences over the seeds, {payload['trials']} simulated runs per cell):",
        "",
        "| δ (pp) | " + " | ".join(f"{n} seeds" for n in seeds) + " |",
        "|---|" + "---|" * len(seeds),
    ]
    for row in payload["table"]:
        cells = " | ".join(f"{row['rates'][str(n)]:.0%}" for n in seeds)
        lines.append(f"| {row['delta']:g} | {cells} |")
    return lines


def main() -> None:
    args = parse_args()
    runs = [s for s in args.runs.split(",") if s]
    spreads = [s for stem in runs for s in seed_spreads(stem)]
    sd = pooled_sd(spreads)
    accuracy, images = run_accuracy(runs[0])
    seeds = [int(n) for n in args.seeds.split(",")]
    rng = np.random.default_rng(0)
    table = [
        {
            "delta": d,
            "rates": {str(n): claim_rate(d, sd, n, args.trials, rng) for n in seeds},
        }
        for d in (float(x) for x in args.deltas.split(","))
    ]
    payload = {
        "runs": runs,
        "cells": len(spreads),
        "pooled_sd_pp": sd,
        "test_images": images,
        "mean_accuracy": accuracy,
        "binomial_sd_pp": binomial_sd(accuracy, images),
        "seeds": seeds,
        "trials": args.trials,
        "table": table,
        "spreads": spreads,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"search_quality_power{args.tag}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(with_run(payload), indent=1))
    md = markdown(payload)
    (RESULTS / f"{stem}.md").write_text("\n".join([*md, "", run_markdown()]) + "\n")
    print("\n".join(md), file=sys.stderr)


if __name__ == "__main__":
    main()
