"""Accuracy against latency over several budgets: a Pareto table (markdown, JSON) and a plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (latency, accuracy) points: True where no other point is faster and as accurate."""
    return [
        not any((l2 <= l1 and a2 >= a1) and (l2, a2) != (l1, a1) for l2, a2 in points)
        for l1, a1 in points
    ]


def write_pareto(
    out: Path, results: list[tuple[float | None, Path, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """pareto.json, pareto.md and pareto.png in `out` for (budget, run directory, metrics) per
    budget; returns pareto.json's rows."""
    rows = []
    for budget, run_dir, metrics in results:
        device, latency = next(iter(metrics["predicted_latency_ms"].items()))
        rows.append(
            {
                "budget_ms": budget,
                "device": device,
                "predicted_ms": latency,
                "test_accuracy": metrics["test_accuracy"],
                "arch": metrics["arch"],
                "run": str(run_dir),
            }
        )
    front = pareto_front([(r["predicted_ms"], r["test_accuracy"]) for r in rows])
    for row, optimal in zip(rows, front, strict=True):
        row["pareto_optimal"] = optimal
    (out / "pareto.json").write_text(json.dumps(rows, indent=1))
    lines = ["| budget ms | predicted ms | test accuracy | Pareto | run |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['budget_ms']} | {r['predicted_ms']:.4f} | {r['test_accuracy']:.4f} | "
        f"{'yes' if r['pareto_optimal'] else ''} | {r['run']} |"
        for r in rows
    ]
    (out / "pareto.md").write_text("\n".join(lines) + "\n")
    _plot(out / "pareto.png", rows)
    return rows


def _plot(path: Path, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    xs = [r["predicted_ms"] for r in rows]
    ys = [100 * r["test_accuracy"] for r in rows]
    ax.scatter(xs, ys, zorder=3)
    for r, x, y in zip(rows, xs, ys, strict=True):
        ax.annotate(f"≤{r['budget_ms']} ms", (x, y), textcoords="offset points", xytext=(4, 4))
        ax.axvline(r["budget_ms"], color="0.85", lw=0.8, zorder=1)
    ax.set_xlabel(f"predicted latency on {rows[0]['device']} (ms)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy vs latency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
