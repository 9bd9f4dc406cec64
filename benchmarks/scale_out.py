"""scale_out: does a multi-budget job finish sooner on two Ray nodes than on one, and what does
the Ray executor cost against the embedded runner?

Jobs of fbnet-tiny on a synthetic 12×12 dataset (`tests.service.fixtures.write_npz`) with a
synthetic LUT, each configuration served as `hwnas serve` serves jobs: its own SQLite database
and one long-lived `hwnas worker` process (OMP_NUM_THREADS=1), on local Ray clusters started as
the tests start them (one CPU a node):

- a four-budget job on a one-node cluster, then on a two-node cluster: the wall-time ratio
  two/one (goal ≤ 0.6);
- a one-budget job by the embedded runner and on the one-node cluster: the Ray executor's
  overhead (goal ≤ 10%).

    python benchmarks/scale_out.py [--repeats 3] [--quick | --smoke]

The jobs take the service's default settings (a job that names only its budgets); `--quick`
runs the shorter jobs an earlier version of this benchmark ran (one weight epoch, 240
architecture steps and two child epochs a budget), where the serial part of the job weighs
more. A job's wall time runs from the worker's claim to its finish (the database's times), so a
worker's idle polling is not in it. Each figure is the median over `--repeats` jobs; each
repeat runs one job of each kind in turn, so a load that drifts hits all alike, with only the
configuration in use up (its cluster and workers started for its jobs and stopped after), and
each worker first runs one small unmeasured job (a serving worker has imported torch and joined
the cluster already; its nodes' worker processes are up). The load average after each job is
recorded beside it.

Where the time goes, in CPU seconds (which other load on a shared machine hardly changes, unlike
wall seconds): each job's CPU by kind of process, from every process's /proc times at its
submission and its end (`_proc_cpu`: Ray's daemons, Ray's workers, the `hwnas worker` driver,
and the rest of the machine's busy time as other work); each Ray unit's own CPU, wall, time
waiting for a core and torch threads (its `unit_usage` event); and, as a control with no Ray,
the two largest budgets' units of each one-node job run again in plain processes, one after the
other and side by side (`_plain_units`). Ray's nodes run with Ray's default health checks and no
log monitor, as docker-compose.yml's do. Writes benchmarks/results/scale_out.json and .md
(scale_out_smoke.* with --smoke).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from statistics import median
from typing import Any

from _plain_units import plain_units
from _proc_cpu import cpu_by_kind, snapshot
from _record import REPO, run_markdown, with_run
from _scale_out_cpu import cpu_by_configuration, cpu_markdown, paired_units, units_usage

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
PAIRED = BUDGETS[-2:]  # the units the two-node job runs first, side by side
DEVICE = "cpu-synth"
FINISHED = ("done", "failed", "cancelled")
PHASES = (
    "before_units_s",
    "weights_s",
    "budget_span_s",
    "budget_units_sum_s",
    "after_units_s",
    "unit_setup_s",
)
QUICK = {"epochs": 1, "arch_steps": 240, "child_epochs": 2, "single_epochs": 4, "single_child": 1}
SMOKE = {"epochs": 1, "arch_steps": 20, "child_epochs": 1, "single_epochs": 1, "single_child": 1}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=960, help="images in the synthetic dataset")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument(
        "--quick", action="store_true", help="short jobs: the serial part weighs more"
    )
    shape.add_argument(
        "--smoke", action="store_true", help="tiny jobs, one repeat: the script runs"
    )
    args = p.parse_args()
    args.shape = "smoke" if args.smoke else "quick" if args.quick else "service defaults"
    if args.smoke:
        args.repeats, args.samples = 1, 240
    return args


def job_fields(shape: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The four-budget and the one-budget job's fields; the service's defaults fill the rest."""
    four: dict[str, Any] = {"budgets": {DEVICE: BUDGETS}}
    single: dict[str, Any] = {"budgets": {DEVICE: 3.5}}
    short = {"quick": QUICK, "smoke": SMOKE}.get(shape)
    if short:
        four |= {k: short[k] for k in ("epochs", "arch_steps", "child_epochs")}
        single |= {"epochs": short["single_epochs"], "child_epochs": short["single_child"]}
    return four, single


class JobWorker:
    """One configuration as the service runs it: a database with the synthetic LUT, served by
    long-lived `hwnas worker` processes (`processes` of them), embedded (`ray_address` empty) or
    Ray drivers."""

    def __init__(
        self, root: Path, dataset: str, cluster: RayCluster | None, processes: int = 1
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.dataset, self.cluster = root, dataset, cluster
        ray_address = cluster.address if cluster else ""
        self.label = "ray" if ray_address else "embedded"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HWNAS_", "RAY_"))}
        env |= {
            "HWNAS_HOME": str(root / "home"),
            "HWNAS_RAY_ADDRESS": ray_address,
            "HWNAS_POLL_S": "0.2",
            "HWNAS_WORKERS": "0",
            "OMP_NUM_THREADS": "1",
        }
        fresh = not (root / "home").exists()
        self.settings = load_settings({"HWNAS_HOME": str(root / "home")})
        if fresh:
            seed_synthetic_lut(self.settings.database_url, DEVICE, in_channels=1, num_classes=3)
        from lut.store import LutStore

        self.engine = LutStore(self.settings.database_url).engine
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "service.cli", "worker", "--id", f"bench-{root.name}-{i}"],
                env=env,
                cwd=REPO,
                stdout=(root / f"worker-{i}.log").open("ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its group: the CPU accounting finds its processes
            )
            for i in range(processes)
        ]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    def job(self, **fields: Any) -> dict[str, Any]:
        """Submit a job and wait for a worker to finish it; its wall time and results, and the
        CPU seconds each kind of process used from its submission to its end."""
        before = snapshot(self.groups())
        run = self._result(self._submit(fields))
        return run | {"cpu_s": cpu_by_kind(before, snapshot(self.groups()))}

    def groups(self) -> set[int]:
        """The process groups of this configuration: its job workers, its cluster's nodes."""
        nodes = set(self.cluster.groups.values()) if self.cluster else set()
        return {process.pid for process in self.processes} | nodes

    def pair(self, **fields: Any) -> dict[str, Any]:
        """Two jobs at once, one per worker process (it takes two): each one's wall time, to
        compare with one job alone: what two units running side by side cost each other on
        this machine, with no Ray involved."""
        before = snapshot(self.groups())
        runs = [self._result(job_id) for job_id in [self._submit(fields), self._submit(fields)]]
        walls = [run["wall_s"] for run in runs]
        used = cpu_by_kind(before, snapshot(self.groups()))
        return {"wall_s": sum(walls) / 2, "walls": walls, "load": os.getloadavg()[0], "cpu_s": used}

    def _submit(self, fields: dict[str, Any]) -> str:
        request = JobCreate(
            space="fbnet-tiny", dataset="digits", devices=[DEVICE], batch_size=32, **fields
        ).model_dump()
        request["dataset"] = self.dataset
        return submit_job(self.engine, tenant="bench", key_id="k", request=request, dataset_id=None)

    def _result(self, job_id: str) -> dict[str, Any]:
        job = self._wait(job_id)
        if job["state"] != "done":
            raise RuntimeError(f"job {job_id} did not finish: {job['error']}")
        events = self._events(job_id)
        claimed = next(at for event, at in events if event.get("type") == "claimed")
        wall = _seconds(job["finished_at"]) - claimed
        metrics = job["metrics"]
        rows = metrics.get("pareto") or [{"arch": metrics["arch"]}]
        archs = [row["arch"] for row in rows]
        log(f"  {self.root.name} {len(archs)} budget(s): {wall:.1f} s")
        run = {"wall_s": wall, "archs": archs, "load": os.getloadavg()[0], "job_id": job_id}
        if self.label == "embedded":
            return run
        usage = [e for e, _ in events if e.get("type") == "unit_usage"]
        phases = unit_phases([(e, at - claimed) for e, at in events], wall)
        return run | {"phases": phases, "units": usage}

    def plain_units(self, run: dict[str, Any], side_by_side: bool) -> dict[str, Any]:
        """The PAIRED budgets' units of the job of `run` again in plain processes
        (`_plain_units`), side by side or one after the other, once this configuration's
        processes have stopped."""
        from service.worker.runner import run_dir_of

        job = get_job(self.engine, run["job_id"])
        if job is None:
            raise RuntimeError(f"job {run['job_id']} is gone")
        how = "side-by-side" if side_by_side else "alone"
        usage = plain_units(
            job["request"],
            run_dir_of(self.settings, run["job_id"]),
            self.settings.database_url,
            PAIRED,
            self.root / f"plain-{how}-{run['job_id']}",
            side_by_side,
        )
        log(f"  plain units {[u['unit'] for u in usage]} {how}")
        return {"units": usage}

    def _wait(self, job_id: str) -> dict[str, Any]:
        while True:
            job = get_job(self.engine, job_id)
            if job is not None and job["state"] in FINISHED:
                return job
            if any(process.poll() is not None for process in self.processes):
                raise RuntimeError(f"a worker of {self.root} exited; see its worker-*.log")
            time.sleep(0.5)

    def _events(self, job_id: str) -> list[tuple[dict[str, Any], float]]:
        """The job's events and their times (seconds since the epoch), in order."""
        from sqlalchemy import select

        from service.tables import job_events

        query = select(job_events.c.data, job_events.c.created_at).where(
            job_events.c.job_id == job_id
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(job_events.c.id)).all()
        return [(data, _seconds(at)) for data, at in rows]


def _seconds(at: Any) -> float:
    """A stored event time as seconds since the epoch (SQLite returns it without its zone)."""
    return float((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())


def unit_phases(events: list[tuple[dict[str, Any], float]], wall: float) -> dict[str, float]:
    """Where a Ray job's wall time went, from (event, seconds after the claim) pairs: before the
    first unit, the weight unit, the budget units (their span, and their sum), after the last;
    `unit_setup_s` is the median time from a budget unit's start to its first event of its own
    (loading the dataset, LUT and shared weights)."""
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


# Ray starts its worker processes at niceness 15; the embedded worker runs at 0. On a shared
# machine that alone would slow the units by whatever else runs there, so the nodes here start
# them at 0 as well (on a cluster's own nodes nothing else competes and it makes no difference).
SAME_PRIORITY = {"RAY_worker_niceness": "0"}
WARM_UP = {"budgets": {DEVICE: BUDGETS[:2]}, "epochs": 1, "arch_steps": 2, "child_epochs": 1}


def measure(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    dataset = str(write_npz(root / "squares.npz", samples=args.samples))
    four, single = job_fields(args.shape)
    runs: dict[str, list[dict[str, Any]]] = {
        k: []
        for k in ("embedded", "ray", "one", "two", "embedded_pair", "plain_alone", "plain_pair")
    }
    for _ in range(args.repeats):  # interleaved: a load that drifts hits every configuration
        with serving(root / "embedded", dataset, nodes=0) as embedded:
            runs["embedded"].append(embedded.job(**single))
            runs["embedded_pair"].append(embedded.pair(**single))
        with serving(root / "one-node", dataset, nodes=1) as one:
            runs["ray"].append(one.job(**single))
            runs["one"].append(one.job(**four))
        runs["plain_alone"].append(one.plain_units(runs["one"][-1], side_by_side=False))
        runs["plain_pair"].append(one.plain_units(runs["one"][-1], side_by_side=True))
        with serving(root / "two-nodes", dataset, nodes=2) as two:
            runs["two"].append(two.job(**four))
    jobs = {k: v for k, v in runs.items() if not k.startswith("plain_")}
    walls = {k: median(r["wall_s"] for r in v) for k, v in jobs.items()}
    loads = [r["load"] for v in jobs.values() for r in v]
    return {
        "settings": vars(args)
        | {"budgets_ms": BUDGETS, "four_budgets": four, "one_budget": single},
        "median_wall_s": walls,
        "two_over_one_node": walls["two"] / walls["one"],
        "amdahl_two_over_one_node": median(amdahl_bound(r, nodes=2) for r in runs["one"]),
        "split_bound_two_over_one_node": median(split_bound(r, nodes=2) for r in runs["one"]),
        "median_phases_s": {
            nodes: {
                k: median(r["phases"][k] for r in runs[nodes]) for k in runs[nodes][0]["phases"]
            }
            for nodes in ("one", "two")
        },
        "ray_overhead": walls["ray"] / walls["embedded"] - 1,
        **contention(runs, walls),
        "median_cpu_by_kind_s": cpu_by_configuration(jobs),
        "paired_units": paired_units(runs, PAIRED),
        "median_units_usage": {nodes: units_usage(runs[nodes]) for nodes in ("ray", "one", "two")},
        "goals": GOALS,
        "load_average": f"{min(loads):.1f}–{max(loads):.1f}",
        "autogroup_scheduling": autogroup_scheduling(),
        "same_architectures": {
            "one_vs_two_nodes": all(r["archs"] == runs["one"][0]["archs"] for r in runs["two"]),
            "ray_vs_embedded": all(r["archs"] == runs["embedded"][0]["archs"] for r in runs["ray"]),
        },
        "runs": runs,
    }


@contextlib.contextmanager
def serving(root: Path, dataset: str, nodes: int) -> Iterator[JobWorker]:
    """One configuration up for the jobs run inside: a cluster of `nodes` one-CPU nodes and its
    job worker, or (no nodes) two embedded worker processes, warmed by one small unmeasured job;
    all stopped afterwards, so no other configuration's processes (Ray's daemons among them)
    share the two cores with it."""
    cluster = (
        RayCluster(root / "ray", ray_env=SAME_PRIORITY, fast_health_checks=False) if nodes else None
    )
    worker = None
    try:
        if cluster is not None:
            cluster.start(second_node=nodes == 2)
        worker = JobWorker(root, dataset, cluster, 1 if nodes else 2)
        if nodes:
            worker.job(**WARM_UP)
        else:
            worker.pair(**WARM_UP)  # warms both processes
        yield worker
    finally:
        if worker is not None:
            worker.stop()
        if cluster is not None:
            cluster.stop()


def contention(runs: dict[str, list[dict[str, Any]]], walls: dict[str, float]) -> dict[str, float]:
    """What two units side by side cost each other on this machine: two embedded one-budget jobs
    at once against one alone (`pair_slowdown`, no Ray involved), beside the two-node runs'
    budget units' summed time against the one-node runs' (`two_node_units_slowdown`); and the
    two-node ratio with the pair's slowdown taken out of the budget units' span, an estimate of
    what nodes that share no machine would give."""
    pair = walls["embedded_pair"] / walls["embedded"]
    sums = {n: median(r["phases"]["budget_units_sum_s"] for r in runs[n]) for n in ("one", "two")}
    spans = [r["phases"]["budget_span_s"] for r in runs["two"]]
    unshared = [
        r["wall_s"] - span + span / pair for r, span in zip(runs["two"], spans, strict=True)
    ]
    return {
        "pair_slowdown": pair,
        "two_node_units_slowdown": sums["two"] / sums["one"],
        "two_over_one_node_unshared_estimate": median(unshared) / walls["one"],
    }


def autogroup_scheduling() -> str:
    """Whether the kernel shares the CPU between sessions before niceness counts (`on`), which
    lets other work at low priority take a session's share from the jobs."""
    path = Path("/proc/sys/kernel/sched_autogroup_enabled")
    if not path.exists():
        return "absent"
    return "on" if path.read_text().strip() == "1" else "off"


def amdahl_bound(one_node: dict[str, Any], nodes: int) -> float:
    """The least wall ratio `nodes` nodes can reach against a one-node run: only its budget
    units' span divides (Amdahl's law); all else in the job is serial."""
    wall, span = one_node["wall_s"], one_node["phases"]["budget_span_s"]
    return (wall - span + span / nodes) / wall


def split_bound(one_node: dict[str, Any], nodes: int) -> float:
    """The least wall ratio `nodes` nodes can reach against a one-node run once the budget
    units' sizes count: each unit runs whole on one node, so the span is at best the busiest
    node's share under the best assignment of the units (each unit's one-node wall), not the
    sum over `nodes` as in `amdahl_bound`."""
    sizes = [u["wall_s"] for u in one_node["units"] if u.get("budget_ms") is not None]
    best = min(
        max(sum(s for s, node in zip(sizes, plan, strict=True) if node == n) for n in range(nodes))
        for plan in itertools.product(range(nodes), repeat=len(sizes))
    )
    wall, span = one_node["wall_s"], one_node["phases"]["budget_span_s"]
    return (wall - span + best) / wall


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
        f"{result['amdahl_two_over_one_node']:.2f}; with the units' sizes (each runs whole on "
        f"one node; the best assignment of the four to two nodes): "
        f"{result['split_bound_two_over_one_node']:.2f}.",
        "",
        f"Two units side by side on this machine: two embedded one-budget jobs at once take "
        f"{result['pair_slowdown']:.2f}× one alone ({w['embedded_pair']:.1f} s), with no Ray "
        f"involved; the two-node runs' budget units took {result['two_node_units_slowdown']:.2f}× "
        f"the one-node runs' in sum. With the pair's slowdown taken out of the budget units' "
        f"span, the two-node ratio would be {result['two_over_one_node_unshared_estimate']:.2f} "
        "(an estimate for nodes that share no machine, not a measurement).",
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
        *cpu_markdown(result),
        "",
        f"Jobs: {result['settings']['shape']} (four budgets: {_fields(result, 'four_budgets')}; "
        f"one budget: {_fields(result, 'one_budget')}), each served by a long-lived "
        "`hwnas worker`, timed from its claim to its finish.",
        "",
        f"Same architectures one vs two nodes: {same['one_vs_two_nodes']}; Ray vs embedded: "
        f"{same['ray_vs_embedded']}. Medians of {result['settings']['repeats']} jobs each; "
        f"load average after the jobs: {result['load_average']}; Linux's autogroup "
        f"scheduling {result['autogroup_scheduling']}.",
        "",
        run_markdown(),
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


def _fields(result: dict[str, Any], kind: str) -> str:
    """A job's settings beside its budgets, or "service defaults" where it sets none."""
    fields = {k: v for k, v in result["settings"][kind].items() if k != "budgets"}
    return ", ".join(f"{k} {v}" for k, v in fields.items()) or "the service's defaults"


def main() -> None:
    args = parse_args()
    # a SIGTERM unwinds as an exception, so the workers and the clusters are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="scale-out-") as tmp:
        result = measure(args, Path(tmp))
    write(result, args.smoke)
    log(json.dumps({k: result[k] for k in ("median_wall_s", "two_over_one_node", "ray_overhead")}))


if __name__ == "__main__":
    main()
