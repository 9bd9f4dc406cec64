"""scale_out: does a multi-budget job finish sooner on two Ray nodes than on one, and what does
the Ray executor cost against the embedded runner?

Jobs of fbnet-tiny on a synthetic 12×12 dataset (`tests.service.fixtures.write_npz`) with a
synthetic LUT, submitted to an SQLite database and run by a real `hwnas worker --once` process
each (OMP_NUM_THREADS=1), on local Ray clusters started as the tests start them (one CPU a node):

- a four-budget job on a one-node cluster, then on a two-node cluster: the wall-time ratio
  two/one (goal ≤ 0.6);
- a one-budget job by the embedded runner and on the one-node cluster: the Ray executor's
  overhead (goal ≤ 10%).

    python benchmarks/scale_out.py [--repeats 3] [--smoke]

Each figure is the median over `--repeats` jobs. Both clusters run at once (idle when not in
use) and each repeat runs one job of each kind in turn, so a load that drifts hits all alike;
each cluster first runs one small unmeasured job (so its nodes' worker processes are up, as on
a cluster that serves jobs). The load average after each job is recorded beside it. Writes
benchmarks/results/scale_out.json and .md (scale_out_smoke.* with --smoke).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path
from statistics import median
from typing import Any

from _record import REPO, run_markdown, with_run

sys.path.insert(0, str(REPO))

from service.config import load_settings
from service.crud.jobs import get_job, submit_job
from service.schemas.jobs import JobCreate
from tests.service.fixtures import seed_synthetic_lut, write_npz
from tests.service.ray_cluster import RayCluster

NAME = "scale_out"
RESULTS = REPO / "benchmarks" / "results"
GOALS = {"two_over_one_node": 0.6, "ray_overhead": 0.10}
BUDGETS = [2.5, 3.5, 4.5, 5.5]
DEVICE = "cpu-synth"
PHASES = (
    "before_units_s",
    "weights_s",
    "budget_span_s",
    "budget_units_sum_s",
    "after_units_s",
    "unit_setup_s",
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=960, help="images in the synthetic dataset")
    p.add_argument("--arch-steps", type=int, default=240, help="per budget")
    p.add_argument("--epochs", type=int, default=1, help="the shared weight phase's")
    p.add_argument("--child-epochs", type=int, default=2)
    p.add_argument("--single-epochs", type=int, default=4, help="the one-budget job's search")
    p.add_argument("--smoke", action="store_true", help="tiny jobs, one repeat: the script runs")
    args = p.parse_args()
    if args.smoke:
        args.repeats, args.samples, args.arch_steps = 1, 240, 20
        args.child_epochs, args.single_epochs = 1, 1
    return args


class Bench:
    """A database with the synthetic LUT and the dataset; runs one job per worker process."""

    def __init__(self, root: Path, samples: int) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("HWNAS_", "RAY_"))} | {
            "HWNAS_HOME": str(root / "home"),
            "OMP_NUM_THREADS": "1",
            "HWNAS_WORKERS": "0",
        }
        self.settings = load_settings({"HWNAS_HOME": str(root / "home")})
        seed_synthetic_lut(self.settings.database_url, DEVICE, in_channels=1, num_classes=3)
        self.dataset = str(write_npz(root / "squares.npz", samples=samples))
        from lut.store import LutStore

        self.engine = LutStore(self.settings.database_url).engine

    def job(self, ray_address: str, **fields: Any) -> dict[str, Any]:
        """Submit a job, run it in a `hwnas worker --once`; its wall time and results."""
        request = JobCreate(
            space="fbnet-tiny", dataset="digits", devices=[DEVICE], batch_size=32, **fields
        ).model_dump()
        request["dataset"] = self.dataset
        job_id = submit_job(
            self.engine, tenant="bench", key_id="k", request=request, dataset_id=None
        )
        env = {**self.env, "HWNAS_RAY_ADDRESS": ray_address} if ray_address else self.env
        started, clock = time.perf_counter(), time.time()
        subprocess.run(
            [sys.executable, "-m", "service.cli", "worker", "--once", "--id", "bench"],
            env=env,
            cwd=REPO,
            check=True,
            stdout=(self.root / "worker.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wall = time.perf_counter() - started
        job = get_job(self.engine, job_id)
        if job is None or job["state"] != "done":
            raise RuntimeError(f"job {job_id} did not finish: {job and job['error']}")
        metrics = job["metrics"]
        rows = metrics.get("pareto") or [{"arch": metrics["arch"]}]
        archs = [row["arch"] for row in rows]
        log(f"  {'ray' if ray_address else 'embedded'} {len(archs)} budget(s): {wall:.1f} s")
        run = {"wall_s": wall, "archs": archs, "load": os.getloadavg()[0]}
        return run | ({"phases": self.phases(job_id, clock, wall)} if ray_address else {})

    def phases(self, job_id: str, clock: float, wall: float) -> dict[str, float]:
        """Where a Ray job's wall time went, from its units' events' times (seconds after the
        worker process started): before the first unit, the weight unit, the budget units
        (their span, and their sum), after the last; `unit_setup_s` is the median time from a
        budget unit's start to its first event of its own (loading the dataset, LUT and shared
        weights)."""
        from sqlalchemy import select

        from service.tables import job_events

        query = select(job_events.c.data, job_events.c.created_at).where(
            job_events.c.job_id == job_id
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(job_events.c.id)).all()
        events = [(data, _seconds(at) - clock) for data, at in rows]
        return unit_phases(events, wall)


def _seconds(at: Any) -> float:
    """A stored event time as seconds since the epoch (SQLite returns it without its zone)."""
    return float((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())


def unit_phases(events: list[tuple[dict[str, Any], float]], wall: float) -> dict[str, float]:
    """`Bench.phases` from (event, seconds after the process started) pairs."""
    spans: dict[str, list[float]] = {}
    setups: list[float] = []
    for index, (event, at) in enumerate(events):
        if event.get("type") in ("unit_started", "unit_finished"):
            spans.setdefault(event["unit"], []).append(at)
        if event.get("type") == "unit_started" and event["unit"] != "weights":
            own = [t for e, t in events[index + 1 :] if e.get("budget_ms") == event["budget_ms"]]
            if own:
                setups.append(own[0] - at)
    budgets = [times for unit, times in spans.items() if unit != "weights"]
    weights = spans.get("weights", [0.0, 0.0])
    first = min(times[0] for times in spans.values())
    last = max(times[-1] for times in spans.values())
    return {
        "before_units_s": first,
        "weights_s": weights[-1] - weights[0],
        "budget_span_s": max(t[-1] for t in budgets) - min(t[0] for t in budgets),
        "budget_units_sum_s": sum(t[-1] - t[0] for t in budgets),
        "after_units_s": wall - last,
        "unit_setup_s": median(setups) if setups else 0.0,
    }


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cluster(bench: Bench, root: Path, second_node: bool) -> RayCluster:
    """A started cluster, warmed by one small unmeasured two-budget job (a long-lived cluster's
    nodes have their worker processes running already)."""
    ray = RayCluster(root)
    try:
        ray.start(second_node=second_node)
        bench.job(
            ray.address, budgets={DEVICE: BUDGETS[:2]}, epochs=1, arch_steps=2, child_epochs=1
        )
    except BaseException:
        ray.stop()
        raise
    return ray


def measure(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    bench = Bench(root, args.samples)
    four = {
        "budgets": {DEVICE: BUDGETS},
        "epochs": args.epochs,
        "arch_steps": args.arch_steps,
        "child_epochs": args.child_epochs,
    }
    single = {"budgets": {DEVICE: 3.5}, "epochs": args.single_epochs, "child_epochs": 1}
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in ("embedded", "ray", "one", "two")}
    one = two = None
    try:  # both clusters up at once, their runs interleaved: a drifting load hits both alike
        one = cluster(bench, root / "one-node", second_node=False)
        two = cluster(bench, root / "two-nodes", second_node=True)
        for _ in range(args.repeats):
            runs["embedded"].append(bench.job("", **single))
            runs["ray"].append(bench.job(one.address, **single))
            runs["one"].append(bench.job(one.address, **four))
            runs["two"].append(bench.job(two.address, **four))
    finally:
        for started in (one, two):
            if started is not None:
                started.stop()
    walls = {k: median(r["wall_s"] for r in v) for k, v in runs.items()}
    loads = [r["load"] for v in runs.values() for r in v]
    return {
        "settings": vars(args) | {"budgets_ms": BUDGETS},
        "median_wall_s": walls,
        "two_over_one_node": walls["two"] / walls["one"],
        "amdahl_two_over_one_node": median(amdahl_bound(r, nodes=2) for r in runs["one"]),
        "median_phases_s": {
            nodes: {
                k: median(r["phases"][k] for r in runs[nodes]) for k in runs[nodes][0]["phases"]
            }
            for nodes in ("one", "two")
        },
        "ray_overhead": walls["ray"] / walls["embedded"] - 1,
        "goals": GOALS,
        "load_average": f"{min(loads):.1f}–{max(loads):.1f}",
        "same_architectures": {
            "one_vs_two_nodes": all(r["archs"] == runs["one"][0]["archs"] for r in runs["two"]),
            "ray_vs_embedded": all(r["archs"] == runs["embedded"][0]["archs"] for r in runs["ray"]),
        },
        "runs": runs,
    }


def amdahl_bound(one_node: dict[str, Any], nodes: int) -> float:
    """The least wall ratio `nodes` nodes can reach against a one-node run: only its budget
    units' span divides (Amdahl's law); all else in the job is serial."""
    wall, span = one_node["wall_s"], one_node["phases"]["budget_span_s"]
    return (wall - span + span / nodes) / wall


def write(result: dict[str, Any], smoke: bool) -> None:
    name = NAME + ("_smoke" if smoke else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(with_run(result), indent=1))
    w = result["median_wall_s"]
    same = result["same_architectures"]
    lines = [
        f"# {NAME}",
        "",
        "| measure | median wall s | ratio | goal |",
        "|---|---|---|---|",
        f"| four budgets, one node / two nodes | {w['one']:.1f} / {w['two']:.1f} | "
        f"{result['two_over_one_node']:.2f} | ≤ {GOALS['two_over_one_node']} |",
        f"| one budget, embedded / Ray | {w['embedded']:.1f} / {w['ray']:.1f} | "
        f"{result['ray_overhead']:+.1%} overhead | ≤ {GOALS['ray_overhead']:.0%} |",
        "",
        f"Amdahl's bound for two nodes (only the budget units divide): "
        f"{result['amdahl_two_over_one_node']:.2f}.",
        "",
        "| four budgets, median s | before the units | weight unit | budget units' span "
        "| their sum | after | a budget unit's setup |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {nodes} node{'s' if nodes == 'two' else ''} | "
            + " | ".join(f"{result['median_phases_s'][nodes][k]:.1f}" for k in PHASES)
            + " |"
            for nodes in ("one", "two")
        ],
        "",
        f"Same architectures one vs two nodes: {same['one_vs_two_nodes']}; Ray vs embedded: "
        f"{same['ray_vs_embedded']}. Medians of {result['settings']['repeats']} jobs each; "
        f"load average after the jobs: {result['load_average']}.",
        "",
        run_markdown(),
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="scale-out-") as tmp:
        result = measure(args, Path(tmp))
    write(result, args.smoke)
    log(json.dumps({k: result[k] for k in ("median_wall_s", "two_over_one_node", "ray_overhead")}))


if __name__ == "__main__":
    main()
