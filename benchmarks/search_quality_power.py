"""search_quality_power: what can search_quality's claim detect on this task?

search_quality judges "hardcore and fbnet at least match both baselines at every budget, and beat
them at two of three" on mean test accuracies over a few seeds. Each accuracy is one trained
network scored on mnist5k's 1,000 test images, so it carries the test split's binomial noise and
the training's seed-to-seed noise. This script takes that noise from finished multi-seed runs
(the per-seed spread of every method at every budget, pooled) and simulates the claim: the two
searches truly ahead of two equal baselines by δ percentage points at every budget, every
accuracy drawn around its true mean with the pooled spread, the claim judged as search_quality
judges it. It prints how often the claim holds for each δ and number of seeds: the chance that a
real advantage of δ shows, and (δ = 0) the chance that none shows anyway.

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
DEFAULT_RUNS = "search_quality"  # the current multi-seed result (every seed under per_seed)
BUDGETS = 3
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
        per_seed = json.loads(path.read_text())["per_seed"]
    except (OSError, KeyError, ValueError) as exc:
        raise SystemExit(f"search_quality_power: {path}: not a multi-seed run ({exc})") from None
    out = []
    seeds = list(per_seed.values())
    for i in range(len(seeds[0])):
        for method in seeds[0][i]["rows"]:
            accs = [s[i]["rows"][method]["test_accuracy"] for s in seeds if method in s[i]["rows"]]
            if len(accs) > 1:
                sd = 100 * statistics.stdev(accs)
                out.append({"run": stem, "budget": i, "method": method, "n": len(accs), "sd": sd})
    return out


def pooled_sd(spreads: list[dict[str, Any]]) -> float:
    """The root mean variance, weighted by degrees of freedom."""
    dof = sum(s["n"] - 1 for s in spreads)
    return math.sqrt(sum((s["n"] - 1) * s["sd"] ** 2 for s in spreads) / dof)


def claim_rate(delta: float, sd: float, seeds: int, trials: int, rng: Any) -> float:
    """How often the claim holds when both searches are truly `delta` pp ahead of two equal
    baselines at every budget, each mean over `seeds` accuracies of spread `sd`."""
    noise = sd / math.sqrt(seeds)
    base = rng.normal(0.0, noise, size=(trials, BUDGETS, 2)).max(axis=2)
    holds = np.ones(trials, dtype=bool)
    for _ in ("hardcore", "fbnet"):
        margin = delta + rng.normal(0.0, noise, size=(trials, BUDGETS)) - base
        holds &= (margin >= 0).all(axis=1) & ((margin > 0).sum(axis=1) >= BEATS_NEEDED)
    return float(holds.mean())


def binomial_sd(accuracy: float = 0.975, images: int = 1000) -> float:
    return 100 * math.sqrt(accuracy * (1 - accuracy) / images)


def markdown(payload: dict[str, Any]) -> list[str]:
    sd, seeds = payload["pooled_sd_pp"], payload["seeds"]
    lines = [
        "# search_quality_power — what the search_quality claim can detect",
        "",
        f"Per-seed spread of one method's test accuracy at one budget, pooled over "
        f"{payload['cells']} method × budget cells of {', '.join(payload['runs'])}: "
        f"**{sd:.2f} pp** (the 1,000-image test split alone: {payload['binomial_sd_pp']:.2f} pp "
        f"at 97.5%). Chance that the claim holds when hardcore and fbnet are both truly δ pp "
        f"ahead of two equal baselines at all three budgets (judged on means over the seeds, "
        f"{payload['trials']} simulated runs per cell):",
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
        "binomial_sd_pp": binomial_sd(),
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
