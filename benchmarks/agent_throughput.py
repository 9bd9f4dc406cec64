"""OpSpecs measured per minute through the whole loop of the thin profiler agent (a real `hwnas
serve`, the `hwnas-agent` of a virtual environment built by scripts/setup-agent.sh claiming tasks,
downloading the server's converted files, timing them and posting each result over HTTP) against
profiling the same specs locally with `profile_specs` into the database (goal: the agent reaches
≥ 95%); the thin environment's size on disk and install time (goal: < 200 MB), and what the
server's conversion costs per op (ONNX, and TFLite for a few ops).

Both measure with the same runtime, protocol and thread count, pinned to the same CPU (the
server runs on another one, as it would on another machine), from files converted beforehand (the
local cache, the server's artifacts), so the comparison is of the loops, not of conversions. One
agent runs throughout, warmed up on the same ops first (its cache filled, as the local process is
warm from filling its own); rounds alternate local and agent runs on empty LUTs so that drifting
machine load hits both alike. Each round also compares the two LUTs entry by entry (the same
ops, timed by the same runtime on the same CPU, should agree within their timing noise).

    taskset -c 1 .venv/bin/python benchmarks/agent_throughput.py            # full run
    .venv/bin/python benchmarks/agent_throughput.py --smoke --quick         # a check that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _record import run_markdown, with_run
from scipy.stats import spearmanr
from sqlalchemy import delete

from lut.db import MeasurementRow
from lut.opspec import OpSpec
from lut.predictor import FixedCosts
from lut.store import LutStore
from profilers.artifacts import ArtifactStore
from profilers.base import ProfilerBackend, cpu_model, create_backend
from profilers.protocol import QUICK, MeasureProtocol
from profilers.runner import profile_specs
from search.spaces.base import space_from_string
from service.crud.agent_tasks import create_opspec_tasks, micro_models
from service.tables import AgentTaskRow

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
BACKEND = "onnxruntime"
AGENT_DEVICE = "bench-agent"
PLACEHOLDER_FIXED = FixedCosts(0.0, 0.0, 0.0)  # so neither loop measures fixed costs
GOAL = 0.95
SIZE_GOAL_MB = 200


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bench_specs(space: str, count: int) -> tuple[list[OpSpec], OpSpec]:
    """`count` ops of the space, and one more to warm a fresh agent up with."""
    specs = [s for s in space_from_string(space).distinct_opspecs() if not s.is_identity]
    ordered = sorted(specs, key=lambda s: s.key)
    if count >= len(ordered):
        raise SystemExit(f"{space} has {len(ordered)} ops to measure; --specs must be fewer")
    return ordered[:count], ordered[count]


def make_backend(cache: Path, quick: bool) -> ProfilerBackend:
    protocol: MeasureProtocol = QUICK if quick else MeasureProtocol()
    return create_backend(BACKEND, threads=1, cache_dir=cache, protocol=protocol)


def run_local(store: LutStore, backend: ProfilerBackend, name: str, specs: list[OpSpec]) -> float:
    device = store.register_device(name, backend.fingerprint())
    store.set_fixed_costs(device, PLACEHOLDER_FIXED)
    start = time.perf_counter()
    report = profile_specs(store, backend, name, specs)
    elapsed = time.perf_counter() - start
    assert len(report.measured) == len(specs), "local run measured a different number of ops"
    return elapsed


def agreement(store: LutStore, local: str, specs: list[OpSpec]) -> dict[str, float]:
    """How alike the agent's LUT and a local run's are, entry by entry: the median of
    |agent / local - 1| and the share of entries within 10%, after the ratio both share (their
    median) is taken out, and Spearman's rank correlation of the two LUTs."""
    remote = store.lookup(store.resolve_device(AGENT_DEVICE), specs)
    mine = store.lookup(store.resolve_device(local), specs)
    keys = sorted(remote)
    ratios = [remote[k].median_ms / mine[k].median_ms for k in keys]
    unit = statistics.median(ratios)
    rho = spearmanr([remote[k].median_ms for k in keys], [mine[k].median_ms for k in keys])
    return {
        "unit": unit,
        "median_abs_deviation": statistics.median(abs(r / unit - 1) for r in ratios),
        "within_10pct": sum(abs(r / unit - 1) <= 0.1 for r in ratios) / len(ratios),
        "spearman": float(rho.statistic),
    }


def start_server(env: dict[str, str], port: int, cpu: int | None, log_file: Path) -> Any:
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        _pinned(command, cpu),
        env=env,
        cwd=REPO,
        stdout=log_file.open("ab"),
        stderr=subprocess.STDOUT,
    )
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server did not start: {log_file.read_text()[-1500:]}")


def _pinned(command: list[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if cpu is not None else command


def build_thin_venv(venv: Path) -> dict[str, Any]:
    """scripts/setup-agent.sh into a fresh `venv` (both runtimes): its install time and size,
    and the largest things in it."""
    import shutil

    shutil.rmtree(venv, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [str(REPO / "scripts" / "setup-agent.sh"), str(venv)],
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
    )
    install_s = time.perf_counter() - start
    site = next(venv.glob("lib/python*/site-packages"))
    parts = {p.name: _size_mb(p) for p in site.iterdir()}
    largest = dict(sorted(parts.items(), key=lambda kv: -kv[1])[:6])
    return {"install_s": install_s, "size_mb": _size_mb(venv), "largest_mb": largest}


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def conversion_costs(specs: list[OpSpec], work: Path, tflite_ops: int) -> dict[str, Any]:
    """Seconds per op the server's conversion takes, into a cold artifact store."""
    import shutil

    costs: dict[str, Any] = {}
    for fmt, subset in (("onnx", specs), ("tflite", specs[:tflite_ops])):
        if not subset:
            continue
        scratch = work / f"conversion-{fmt}"
        shutil.rmtree(scratch, ignore_errors=True)
        converted = ArtifactStore(scratch)
        converted.ops(subset, fmt)
        costs[fmt] = {"ops": len(subset), "s_per_op": converted.conversion_s / len(subset)}
        log(f"server-side conversion to {fmt}: {costs[fmt]['s_per_op']:.2f} s per op")
        shutil.rmtree(scratch, ignore_errors=True)
    return costs


def start_agent(
    venv: Path, server: str, key: str, args: argparse.Namespace, log_file: Path
) -> subprocess.Popen[bytes]:
    """The thin environment's `hwnas-agent`, with only what that environment holds."""
    command = [str(venv / "bin" / "hwnas-agent"), "--server", server, "--name", AGENT_DEVICE]
    command += ["--backend", BACKEND, "--threads", "1", "--poll", "0.1"]
    command += ["--cache", str(args.workdir / "agent-cache")]
    command += ["--quick"] if args.quick else []
    return subprocess.Popen(
        _pinned(command, args.measure_cpu),
        env={"PATH": os.environ["PATH"], "HWNAS_AGENT_KEY": key},
        cwd=args.workdir,
        stdout=log_file.open("ab"),
        stderr=subprocess.STDOUT,
    )


def run_agent(
    store: LutStore, specs: list[OpSpec], task_specs: int, artifacts: ArtifactStore
) -> float:
    """Seconds from creating the tasks until the (running, warm) agent has posted every spec;
    its LUT is emptied first, as each local round starts from an empty one."""
    device = store.resolve_device(AGENT_DEVICE)
    with store.transaction() as connection:
        connection.execute(delete(AgentTaskRow).where(AgentTaskRow.device_id == device.id))
        connection.execute(delete(MeasurementRow).where(MeasurementRow.device_id == device.id))
    start = time.perf_counter()
    create_opspec_tasks(store, device, specs, task_specs, None, artifacts=artifacts)
    _wait(lambda: not store.missing(device, specs), 3600, "the agent's measurements")
    return time.perf_counter() - start


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def create_agent_key(env: dict[str, str]) -> str:
    command = [sys.executable, "-m", "service.cli", "keys", "create", "--scope", "agent"]
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="fbnet-tiny")
    p.add_argument("--specs", type=int, default=40, help="distinct ops measured per run")
    p.add_argument("--rounds", type=int, default=5, help="local/agent pairs, alternating")
    p.add_argument("--task-specs", type=int, default=8, help="ops per agent task")
    p.add_argument(
        "--quick",
        action="store_true",
        help="the quick protocol (ops of a few ms: the loop's fixed costs weigh more)",
    )
    p.add_argument("--measure-cpu", type=int, default=1, help="CPU of the measuring processes")
    p.add_argument("--server-cpu", type=int, default=0, help="CPU of the server")
    p.add_argument("--smoke", action="store_true", help="6 ops, 1 round; writes *_smoke.*")
    p.add_argument(
        "--tflite-ops", type=int, default=5, help="ops whose TFLite conversion is timed too"
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "hwnas-agent-bench",
        help="database (fresh each run) and converted-model cache (kept)",
    )
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.smoke:
        args.specs, args.rounds = 6, 1
    if hasattr(os, "sched_setaffinity") and args.measure_cpu is not None:
        os.sched_setaffinity(0, {args.measure_cpu})  # the local runs measure on this CPU
    specs, warmup = bench_specs(args.space, args.specs)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    (work / "hwnas.db").unlink(missing_ok=True)  # a fresh database; the model cache is kept
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWNAS_")}
    env.update({"HWNAS_HOME": str(work), "HWNAS_WORKERS": "0", "PYTHONUNBUFFERED": "1"})
    log("building the thin agent's environment with scripts/setup-agent.sh")
    thin = build_thin_venv(work / "thin-venv")
    log(f"thin venv: {thin['size_mb']:.0f} MB, installed in {thin['install_s']:.0f} s")
    conversion = conversion_costs(specs, work, 0 if args.smoke else args.tflite_ops)
    backend = make_backend(work / "cache", args.quick)
    store = LutStore(f"sqlite:///{work / 'hwnas.db'}")
    log(f"filling the converted-model cache with {len(specs)} ops of {args.space}")
    run_local(store, backend, "warm-cache", [*specs, warmup])
    port = 8000 + os.getpid() % 1000
    server = start_server(env, port, args.server_cpu, work / "server.log")
    agent = start_agent(
        work / "thin-venv",
        f"http://127.0.0.1:{port}",
        create_agent_key(env),
        args,
        work / "agent.log",
    )
    artifacts = micro_models(work / "artifacts")  # the server's (HWNAS_HOME=work)
    rounds: list[dict[str, Any]] = []
    try:
        device = _wait(lambda: store.devices(AGENT_DEVICE), 120, "agent registration")[-1]
        store.set_fixed_costs(device, PLACEHOLDER_FIXED)
        log("warming the agent up on the same ops (as the local process is warm)")
        run_agent(store, [*specs, warmup], args.task_specs, artifacts)
        for index in range(args.rounds):
            local_s = run_local(store, backend, f"local-{index}", specs)
            log(f"round {index}: local {len(specs) / local_s * 60:.1f} ops/min")
            agent_s = run_agent(store, specs, args.task_specs, artifacts)
            log(f"round {index}: agent {len(specs) / agent_s * 60:.1f} ops/min")
            alike = agreement(store, f"local-{index}", specs)
            log(f"round {index}: entries differ by a median {alike['median_abs_deviation']:.1%}")
            rounds.append(
                {"local_s": local_s, "agent_s": agent_s, "ratio": local_s / agent_s, **alike}
            )
            write_results(args, specs, rounds, thin, conversion)
    finally:
        for process in (agent, server):
            process.terminate()
            process.wait(timeout=60)
        store.close()


def write_results(
    args: argparse.Namespace,
    specs: list[OpSpec],
    rounds: list[dict],
    thin: dict[str, Any],
    conversion: dict[str, Any],
) -> None:
    n = len(specs)
    local = statistics.median(n / r["local_s"] * 60 for r in rounds)
    agent = statistics.median(n / r["agent_s"] * 60 for r in rounds)
    ratio = statistics.median(r["ratio"] for r in rounds)
    deviation = statistics.median(r["median_abs_deviation"] for r in rounds)
    data = {
        "benchmark": "agent_throughput",
        "space": args.space,
        "specs": n,
        "protocol": "quick" if args.quick else "full",
        "task_specs": args.task_specs,
        "measure_cpu": args.measure_cpu,
        "server_cpu": args.server_cpu,
        "backend": BACKEND,
        "threads": 1,
        "load_average": list(os.getloadavg()),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "rounds": rounds,
        "local_ops_per_min": local,
        "agent_ops_per_min": agent,
        "agent_vs_local": ratio,
        "entries_median_abs_deviation": deviation,
        "goal": GOAL,
        "meets_goal": ratio >= GOAL,
        "thin_venv": {
            **thin,
            "goal_mb": SIZE_GOAL_MB,
            "meets_goal": thin["size_mb"] < SIZE_GOAL_MB,
        },
        "conversion": conversion,
    }
    suffix = "_smoke" if args.smoke else ""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"agent_throughput{suffix}.json").write_text(json.dumps(with_run(data), indent=1))
    lines = [
        "# agent_throughput",
        "",
        f"{n} distinct ops of `{args.space}` measured with `{BACKEND}` (1 thread, "
        f"{data['protocol']} protocol, converted models cached), measuring processes pinned to "
        f"CPU {args.measure_cpu}, the server on CPU {args.server_cpu}; "
        f"{args.task_specs} ops per agent task. Local: `profile_specs` into a fresh LUT. Agent "
        "(one running `hwnas-agent` of the thin environment scripts/setup-agent.sh builds, "
        "warmed up on the same ops like the local process — its file cache filled —, its LUT "
        "emptied before each round): from creating the tasks until every result is in the "
        "database (claim, measure the server's files, batched POSTs, heartbeats, polling).",
        "",
        "| round | local (ops/min) | agent (ops/min) | agent / local | entries: median "
        "\\|agent / local − 1\\| | within 10% | Spearman ρ |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rounds):
        lines.append(
            f"| {i} | {n / r['local_s'] * 60:.1f} | {n / r['agent_s'] * 60:.1f} | "
            f"{r['ratio']:.1%} | {r['median_abs_deviation']:.1%} | {r['within_10pct']:.0%} | "
            f"{r['spearman']:.2f} |"
        )
    lines += [
        f"| **median** | **{local:.1f}** | **{agent:.1f}** | **{ratio:.1%}** | "
        f"**{deviation:.1%}** | | |",
        "",
        f"Goal: agent ≥ {GOAL:.0%} of local — {'met' if ratio >= GOAL else 'NOT met'}.",
        "",
        f"Thin environment (scripts/setup-agent.sh, onnxruntime and ai-edge-litert): "
        f"{thin['size_mb']:.0f} MB on disk, installed in {thin['install_s']:.0f} s (goal "
        f"< {SIZE_GOAL_MB} MB — {'met' if thin['size_mb'] < SIZE_GOAL_MB else 'NOT met'}); "
        "largest parts: "
        + ", ".join(f"{name} {mb:.0f} MB" for name, mb in thin["largest_mb"].items())
        + ".",
        "",
        "Server-side conversion (a cold artifact store, this machine): "
        + "; ".join(
            f"{fmt} {c['s_per_op']:.2f} s per op ({c['ops']} ops)" for fmt, c in conversion.items()
        )
        + ".",
        "",
        f"Machine: {data['machine']['cpu']}, {data['machine']['cores']} cores, shared with other "
        f"work (load average {data['load_average'][0]:.1f} at the end); rounds alternate to "
        "spread load drift over both loops.",
    ]
    (RESULTS / f"agent_throughput{suffix}.md").write_text(
        "\n".join([*lines, "", run_markdown()]) + "\n"
    )


if __name__ == "__main__":
    main()
