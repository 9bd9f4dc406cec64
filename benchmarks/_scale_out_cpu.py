"""scale_out's CPU accounting, summarised: each configuration's CPU seconds a job by process kind
(`_proc_cpu`), what its budget units' own processes used (their `unit_usage` events), and the
same two budget units alone, side by side on Ray and side by side without it (`_plain_units`);
and the tables the result's markdown shows of them."""

from __future__ import annotations

from statistics import median
from typing import Any


def cpu_by_configuration(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Each configuration's median CPU seconds a job by kind of process (`_proc_cpu`)."""
    medians = {}
    for config, config_runs in runs.items():
        kinds = dict.fromkeys(kind for run in config_runs for kind in run["cpu_s"])
        medians[config] = {
            k: median(run["cpu_s"].get(k, 0.0) for run in config_runs) for k in kinds
        }
    return medians


def units_usage(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What a configuration's budget units used, from their `unit_usage` events, summed over a
    job's units, median over its jobs: CPU and wall seconds of their processes, CPU by thread
    name, and the thread counts torch ran them with."""

    def budget_units(run: dict[str, Any]) -> list[dict[str, Any]]:
        return [unit for unit in run["units"] if unit["unit"] != "weights"]

    def summed(key: str) -> float:
        return median(sum(unit[key] for unit in budget_units(run)) for run in runs)

    names = dict.fromkeys(n for run in runs for u in budget_units(run) for n in u["threads_cpu_s"])
    threads = {
        name: median(
            sum(u["threads_cpu_s"].get(name, 0.0) for u in budget_units(run)) for run in runs
        )
        for name in names
    }
    counts = {
        (u["torch_threads"], u["torch_interop_threads"]) for r in runs for u in budget_units(r)
    }
    return {
        "cpu_s": summed("cpu_s"),
        "wall_s": summed("wall_s"),
        "waited_for_cpu_s": summed("waited_for_cpu_s"),
        "preempted": median(
            sum(u.get("context_switches", [0, 0])[1] for u in budget_units(run)) for run in runs
        ),
        "threads_cpu_s": threads,
        "torch_threads": sorted(counts),
        "os_threads": sorted({u["os_threads"] for r in runs for u in budget_units(r)}),
    }


def paired_units(runs: dict[str, list[dict[str, Any]]], paired: list[float]) -> dict[str, Any]:
    """The `paired` budgets' units' CPU, wall and waiting-for-a-core seconds, summed, median over
    the repeats: on Ray one after the other (one node) and side by side (two nodes), in plain
    processes (no Ray) one after the other and side by side; and each side-by-side run's CPU and
    wall against its one-after-the-other run."""

    def summed(config: str, key: str) -> float:
        return median(
            sum(u[key] for u in run["units"] if u.get("budget_ms") in paired)
            for run in runs[config]
        )

    keys = ("cpu_s", "wall_s", "waited_for_cpu_s")
    configs = ("one", "two", "plain_alone", "plain_pair")
    usage = {c: {k: summed(c, k) for k in keys} for c in configs}
    alone = {"two": "one", "plain_pair": "plain_alone"}
    return {
        "budgets_ms": paired,
        "usage": usage,
        "cpu_over_alone": {c: usage[c]["cpu_s"] / usage[a]["cpu_s"] for c, a in alone.items()},
        "wall_over_alone": {c: usage[c]["wall_s"] / usage[a]["wall_s"] for c, a in alone.items()},
    }


CONFIGS = {
    "embedded": "1 budget, embedded",
    "ray": "1 budget, Ray 1 node",
    "embedded_pair": "2 × 1 budget, embedded pair",
    "one": "4 budgets, 1 node",
    "two": "4 budgets, 2 nodes",
}


NOT_DAEMONS = (
    "other processes",
    "machine",
    "ray workers (units)",
    "hwnas worker (driver)",
    "reaped children",
)


def daemons_cpu_s(by_kind: dict[str, float]) -> float:
    """The CPU seconds of Ray's own processes (GCS, raylets, agents, client server, monitors)."""
    return sum(seconds for kind, seconds in by_kind.items() if kind not in NOT_DAEMONS)


def cpu_markdown(result: dict[str, Any]) -> list[str]:
    """The CPU tables: each configuration's CPU seconds a job by process kind, and what its
    budget units' own processes used."""
    cpu = result["median_cpu_by_kind_s"]
    kinds = dict.fromkeys(kind for config in cpu.values() for kind in config)
    lines = [
        "| CPU s a job (median), by process | " + " | ".join(CONFIGS.values()) + " |",
        "|---" * (len(CONFIGS) + 1) + "|",
        *[
            f"| {kind} | " + " | ".join(f"{cpu[c].get(kind, 0.0):.1f}" for c in CONFIGS) + " |"
            for kind in kinds
        ],
        "",
        "Ray's own processes used "
        + " / ".join(f"{daemons_cpu_s(cpu[c]):.1f}" for c in ("one", "two"))
        + " CPU s during a four-budget job on one / two nodes, beside "
        + " / ".join(f"{cpu[c].get('ray workers (units)', 0.0):.1f}" for c in ("one", "two"))
        + " CPU s of its units' worker processes.",
        "",
        "| budget units, summed a job (median) | CPU s | wall s | waited for a core s "
        "| preempted (times) | CPU / wall | torch threads (intra, inter-op) | OS threads "
        "| CPU s by thread |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for config in ("ray", "one", "two"):
        usage = result["median_units_usage"][config]
        busiest = ", ".join(f"{n} {s:.1f}" for n, s in usage["threads_cpu_s"].items() if s >= 0.1)
        lines.append(
            f"| {CONFIGS[config]} | {usage['cpu_s']:.1f} | {usage['wall_s']:.1f} | "
            f"{usage['waited_for_cpu_s']:.1f} | {usage.get('preempted', 0):.0f} | "
            f"{usage['cpu_s'] / usage['wall_s']:.2f} | {usage['torch_threads']} | "
            f"{usage['os_threads']} | {busiest} |"
        )
    return [*lines, "", *paired_markdown(result["paired_units"])]


def paired_markdown(paired: dict[str, Any]) -> list[str]:
    """The same two budget units alone, side by side on Ray, and side by side without Ray."""
    names = {
        "one": "Ray, one after the other (1 node)",
        "two": "Ray, side by side (2 nodes)",
        "plain_alone": "plain processes (no Ray), one after the other",
        "plain_pair": "plain processes (no Ray), side by side",
    }
    lines = [
        f"| budget units {paired['budgets_ms']} ms, summed (median) | CPU s | wall s "
        "| waited for a core s | CPU / one after the other | wall / one after the other |",
        "|---|---|---|---|---|---|",
    ]
    for config, name in names.items():
        usage = paired["usage"][config]
        cpu = paired["cpu_over_alone"].get(config, 1.0)
        wall = paired["wall_over_alone"].get(config, 1.0)
        lines.append(
            f"| {name} | {usage['cpu_s']:.1f} | {usage['wall_s']:.1f} | "
            f"{usage['waited_for_cpu_s']:.1f} | {cpu:.2f} | {wall:.2f} |"
        )
    return lines
