"""constraint_satisfaction: do the searches respect the latency budget, and use it?

On mnist5k and fbnet-tiny with this machine's onnxruntime LUT (1 thread, calibrated), `--count`
budgets spread evenly over the space's feasible range ((i + ½)/n of the way from its smallest to
its largest predicted latency) and, per strategy, a short search at each (few epochs: this is
about constraint handling, not accuracy; the derived network is not trained). Per strategy: the
share of results whose predicted latency is within the budget, the share whose measured end-to-end
latency is within `--slack` (1.05) × the budget, the share of the budget used (predicted / budget:
mean and min) and the share of `skip` choices in the results.

    python benchmarks/constraint_satisfaction.py

Writes benchmarks/results/constraint_satisfaction.json and .md (…_smoke.* with --smoke),
rewritten after each budget. Searches are cached in the workdir, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import _common as c

NAME = "constraint_satisfaction"
SMOKE = {"strategies": "hardcore,proxyless", "epochs": 1, "count": 2, "calibration": 4}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    c.add_common_args(p, "hardcore,fbnet,proxyless", epochs=3)
    p.add_argument("--count", type=int, default=20, help="budgets over the feasible range")
    p.add_argument("--fractions", default="", help="budgets as fractions min→max (over --count)")
    p.add_argument("--budgets-ms", default="", help="absolute budgets (override the others)")
    p.add_argument("--slack", type=float, default=1.05, help="measured ≤ slack × budget counts")
    p.add_argument("--trials", type=int, default=8, help="candidates, if random/evolution run")
    p.add_argument(
        "--measure-rounds",
        type=int,
        default=1,
        help="time every result this many times, in rounds over all results in shuffled orders, "
        "and take the median as its measured latency (one run of a tiny network varies by "
        "several percent on a shared machine)",
    )
    p.add_argument(
        "--every",
        default="",
        help="'strategy=k,...': run that strategy at every k-th budget only (from the (k-1)//2-th)",
    )
    args = c.parse(p, SMOKE)
    args.every = {s: int(k) for s, k in (item.split("=") for item in args.every.split(",") if item)}
    return args


def runs_at(args: argparse.Namespace, strategy: str, index: int) -> bool:
    """Whether `strategy` is searched at the `index`-th budget (see `--every`)."""
    k = args.every.get(strategy, 1)
    return index % k == (k - 1) // 2


def summarise(points: list[dict[str, Any]], slack: float) -> dict[str, Any]:
    used = [p["predicted_ms"] / p["budget_ms"] for p in points]
    return {
        "n": len(points),
        "predicted_within": sum(p["predicted_ms"] <= p["budget_ms"] * (1 + 1e-9) for p in points)
        / len(points),
        "measured_within_slack": sum(p["measured_ms"] <= slack * p["budget_ms"] for p in points)
        / len(points),
        "budget_used_mean": statistics.fmean(used),
        "budget_used_min": min(used),
        "budget_used_max": max(used),
        "measured_over_budget_mean": statistics.fmean(
            p["measured_ms"] / p["budget_ms"] for p in points
        ),
        "measured_over_budget_max": max(p["measured_ms"] / p["budget_ms"] for p in points),
        "skip_share": statistics.fmean(p["skip_share"] for p in points),
        "search_wall_s_mean": statistics.fmean(p["search_wall_s"] for p in points),
    }


def markdown(meta: dict[str, Any], points: dict[str, list], summary: dict[str, Any]) -> list[str]:
    slack = meta["slack"]
    lines = [
        f"# constraint_satisfaction — {meta['cpu']}, {meta['backend']}, {meta['date']}",
        "",
        f"mnist5k, fbnet-tiny (predicted {meta['space_range_ms'][0]:.4f}–{meta['space_range_ms'][1]:.4f} ms), "
        f"{meta['budgets']} budgets over that range, searches of {meta['epochs']} epochs "
        f"({meta['warmup_epochs']} warm-up), seed {meta['seed']}. Predicted: the calibrated LUT; "
        "measured: end to end, median"
        + (
            f" of {meta['measure_rounds']} rounds (each over all results, shuffled)."
            if meta.get("measure_rounds", 1) > 1
            else "."
        )
        + "".join(f" {s} ran at one budget in {k} only." for s, k in meta.get("every", {}).items()),
        "",
        f"| strategy | n | predicted ≤ budget | measured ≤ {slack:g}× budget | budget used mean | "
        "budget used min | measured / budget max | skip share | search s (mean) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s, m in summary.items():
        lines.append(
            f"| {s} | {m['n']} | {100 * m['predicted_within']:.0f}% | "
            f"{100 * m['measured_within_slack']:.0f}% | {100 * m['budget_used_mean']:.0f}% | "
            f"{100 * m['budget_used_min']:.0f}% | {m['measured_over_budget_max']:.2f} | "
            f"{100 * m['skip_share']:.0f}% | {m['search_wall_s_mean']:.0f} |"
        )
    lines += [
        "",
        "Per budget (predicted / budget, measured / budget, skip share):",
        "",
        "| budget ms | " + " | ".join(points) + " |",
        "|---|" + "---|" * len(points),
    ]
    budgets = sorted({p["budget_ms"] for ps in points.values() for p in ps})
    for budget in budgets:
        cells = []
        for ps in points.values():
            at = [p for p in ps if p["budget_ms"] == budget]
            cells.append(
                f"{at[0]['predicted_ms'] / budget:.2f}, {at[0]['measured_ms'] / budget:.2f}, "
                f"{100 * at[0]['skip_share']:.0f}%"
                if at
                else "—"
            )
        lines.append(f"| {budget:.4f} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    args = parse_args()
    bench = c.open_bench(args)
    space, model = c.prepare_space(bench, c.SPACE)
    lo, hi = model.min_latency_ms, model.max_latency_ms
    if args.budgets_ms:
        budgets = [float(b) for b in args.budgets_ms.split(",")]
    elif args.fractions:
        budgets = [lo + float(f) * (hi - lo) for f in args.fractions.split(",")]
    else:
        budgets = [lo + (i + 0.5) / args.count * (hi - lo) for i in range(args.count)]
    c.log(f"{len(budgets)} budgets from {budgets[0]:.4f} to {budgets[-1]:.4f} ms")
    meta = {
        **c.meta(args),
        "epochs": args.epochs,
        "warmup_epochs": args.warmup_epochs,
        "seed": args.seed,
        "slack": args.slack,
        "measure_rounds": args.measure_rounds,
        "budgets": len(budgets),
        "every": args.every,
        "space_range_ms": [lo, hi],
    }
    points: dict[str, list[dict[str, Any]]] = {s: [] for s in args.strategies}
    for n, budget in enumerate(budgets, start=1):
        c.log(f"budget {n}/{len(budgets)}: {budget:.4f} ms")
        for s in (s for s in args.strategies if runs_at(args, s, n - 1)):
            out = c.run_dir(args, NAME, budget, f"{s}-t{args.trials}")
            if c.skipped(args, s, out, "derived.json"):
                continue
            derived = c.search_only(bench, args, s, budget, out, trials=args.trials)
            arch = derived["arch"]
            predicted = model.cost(c.choices_of(space, arch))
            measured = c.measure_text(bench, space, arch)
            points[s].append(
                {
                    "budget_ms": budget,
                    "arch": arch,
                    "predicted_ms": predicted,
                    "measured_ms": measured,
                    "skip_share": c.choice_share(arch, "skip"),
                    "search_wall_s": derived["search_wall_s"],
                }
            )
            c.log(
                f"  {s}: predicted {predicted / budget:.2f}, measured {measured / budget:.2f} × budget"
            )
        write(args, meta, points)
    if args.measure_rounds > 1:
        texts = [p["arch"] for ps in points.values() for p in ps]
        rounds = c.measure_rounds(bench, space, texts, args.measure_rounds)
        for p in (p for ps in points.values() for p in ps):
            p["measured_rounds_ms"] = rounds[p["arch"]]
            p["measured_ms"] = statistics.median(rounds[p["arch"]])
        write(args, meta, points)


def write(args: argparse.Namespace, meta: dict[str, Any], points: dict[str, list]) -> None:
    summary = {s: summarise(ps, args.slack) for s, ps in points.items() if ps}
    payload = {"meta": meta, "summary": summary, "points": points}
    c.write_results(NAME, args, payload, markdown(meta, points, summary))


if __name__ == "__main__":
    main()
