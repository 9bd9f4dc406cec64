"""service_load: does the REST service stay fast and error-free under concurrent use?

`--clients` (50) clients poll job status (GET /jobs/{id}, one request every `--poll-interval`
seconds each) while `--agents` (4) profiler agents claim profiling tasks and post their
measurements (POST /agents/{id}/tasks/claim, POST .../results) for `--duration` (60) seconds,
all on loopback against one `hwnas serve` (uvicorn, no local workers, so no search competes for
the CPU). Reports requests, errors and p50/p90/p99 latency per kind (goal: 0 errors, p99 ≤ 50 ms).

    python benchmarks/service_load.py [--database-url postgresql+psycopg://...]

Writes benchmarks/results/service_load.json and .md (service_load_<database>.* for another database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from _record import run_markdown, with_run

from lut.opspec import OpSpec
from lut.store import LutStore
from service.auth import create_key
from service.crud.agent_tasks import create_opspec_tasks

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
JOBS = 10
SPECS_PER_TASK = 4


def log(message: str) -> None:
    sys.stderr.write(f"[service_load] {message}\n")


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    async def request(
        self, kind: str, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.errors[kind].append(f"{type(exc).__name__}: {exc}")
            return None
        finally:
            self.latencies[kind].append((time.perf_counter() - start) * 1000)
        if response.status_code >= 400:
            self.errors[kind].append(f"{response.status_code}: {response.text[:200]}")
        return response


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def synthetic_specs(count: int, seed: int) -> list[OpSpec]:
    """Distinct small convolutions: what a profiling task carries."""
    rng = random.Random(seed)
    specs: dict[str, OpSpec] = {}
    while len(specs) < count:
        spec = OpSpec("conv", rng.randint(1, 256), rng.randint(1, 256), height=8, width=8, kernel=3)
        specs[spec.key] = spec
    return list(specs.values())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(env: dict[str, str], port: int, log_file: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=REPO,
        stdout=log_file.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {log_file.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("server did not start")


async def poll_jobs(
    rec: Recorder, client: httpx.AsyncClient, jobs: list[str], until: float, interval: float
) -> None:
    rng = random.Random()
    await asyncio.sleep(rng.uniform(0, interval))  # spread the clients over the interval
    while time.perf_counter() < until:
        await rec.request("poll job status", client, "GET", f"/jobs/{rng.choice(jobs)}")
        await asyncio.sleep(interval)


def _results_body(task: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    return {
        "kind": "measurements",
        "profiler_version": "bench",
        "measurements": [
            {
                "opspec": spec,
                "measurement": {
                    "samples_ms": [round(rng.uniform(0.01, 0.02), 5) for _ in range(20)],
                    "warmup": 10,
                },
            }
            for spec in task["specs"]
        ],
    }


async def run_agent(
    rec: Recorder, client: httpx.AsyncClient, agent_id: str, until: float, interval: float
) -> int:
    rng, posted = random.Random(), 0
    while time.perf_counter() < until:
        claimed = await rec.request(
            "agent claims a task", client, "POST", f"/agents/{agent_id}/tasks/claim"
        )
        task = claimed.json().get("task") if claimed is not None and claimed.is_success else None
        if task is not None:
            url = f"/agents/{agent_id}/tasks/{task['id']}/results"
            body = _results_body(task, rng)
            answer = await rec.request("agent posts measurements", client, "POST", url, json=body)
            posted += int(answer is not None and answer.is_success)
        await asyncio.sleep(interval)
    return posted


async def load(args: argparse.Namespace, base_url: str, keys: dict[str, Any]) -> dict[str, Any]:
    rec = Recorder()
    limits = httpx.Limits(max_connections=args.clients + 2 * args.agents + 8)
    user = httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {keys['user']}"},
        timeout=30,
        limits=limits,
    )
    agents = [
        httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        for key in keys["agents"]
    ]
    until = time.perf_counter() + args.duration
    started = time.perf_counter()
    results = await asyncio.gather(
        *[
            poll_jobs(rec, user, keys["jobs"], until, args.poll_interval)
            for _ in range(args.clients)
        ],
        *[
            run_agent(rec, client, agent_id, until, args.agent_interval)
            for client, agent_id in zip(agents, keys["agent_ids"], strict=True)
        ],
    )
    wall = time.perf_counter() - started
    for client in (user, *agents):
        await client.aclose()
    return summarise(rec, wall, posted=sum(r for r in results if isinstance(r, int)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summarise(rec: Recorder, wall: float, posted: int) -> dict[str, Any]:
    kinds = {}
    everything: list[float] = []
    for kind, values in sorted(rec.latencies.items()):
        everything += values
        kinds[kind] = _stats(values, len(rec.errors[kind]), wall)
    return {
        "wall_s": wall,
        "tasks_posted": posted,
        "all": _stats(everything, sum(len(e) for e in rec.errors.values()), wall),
        "by_kind": kinds,
        "error_samples": {k: v[:5] for k, v in rec.errors.items() if v},
    }


def _stats(values: list[float], errors: int, wall: float) -> dict[str, Any]:
    return {
        "requests": len(values),
        "errors": errors,
        "per_s": len(values) / wall,
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values),
        "mean_ms": statistics.fmean(values),
    }


def prepare(args: argparse.Namespace, url: str, base_url: str) -> dict[str, Any]:
    store = LutStore(url)
    _, user_key = create_key(store.engine, "user", "bench")
    agent_keys = [create_key(store.engine, "agent", "bench")[1] for _ in range(args.agents)]
    store.register_device("bench-device", {"backend": "synthetic"})
    headers = {"Authorization": f"Bearer {user_key}"}
    jobs = []
    for seed in range(JOBS):
        body = {
            "space": "fbnet-tiny",
            "dataset": "digits",
            "devices": ["bench-device"],
            "budgets": {"bench-device": 1.0},
            "seed": seed,
        }
        answer = httpx.post(f"{base_url}/jobs", json=body, headers=headers, timeout=30)
        answer.raise_for_status()
        jobs.append(answer.json()["id"])
    agent_ids = []
    tasks = int(args.duration / args.agent_interval) + 50  # more than an agent can finish
    for index, key in enumerate(agent_keys):
        fingerprint = {"backend": "synthetic", "bench_agent": index}
        answer = httpx.post(
            f"{base_url}/agents/register",
            json={"name": f"bench-target-{index}", "fingerprint": fingerprint},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        answer.raise_for_status()
        agent_ids.append(answer.json()["agent_id"])
        device = store.device(answer.json()["device"]["id"])
        specs = synthetic_specs(tasks * SPECS_PER_TASK, seed=index)
        create_opspec_tasks(store, device, specs, SPECS_PER_TASK, None)
    store.close()
    return {"user": user_key, "agents": agent_keys, "agent_ids": agent_ids, "jobs": jobs}


def measured_load(
    args: argparse.Namespace, base_url: str, keys: dict[str, Any], server_pid: int
) -> dict[str, Any]:
    agents = {
        **keys,
        "agents": keys["agents"][: args.agents],
        "agent_ids": keys["agent_ids"][: args.agents],
    }
    server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
    result = asyncio.run(load(args, base_url, agents))
    result["cpu_s"] = {
        "server": cpu_seconds(server_pid) - server_cpu,
        "load_generator": time.process_time() - client_cpu,
    }
    return result


def write(result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    database = result["setting"]["database"]
    name = "service_load" if database == "sqlite" else f"service_load_{database}"
    (RESULTS / f"{name}.json").write_text(json.dumps(with_run(result), indent=1))
    lines = [
        f"# {name}",
        "",
        f"{result['setting']['clients']} clients polling job status every "
        f"{result['setting']['poll_interval_s']} s and {result['setting']['agents']} agents "
        f"claiming tasks and posting measurements (every {result['setting']['agent_interval_s']} s) "
        f"for {result['wall_s']:.0f} s on loopback; {result['setting']['database']} database; "
        f"{result['meta']['cpus']} CPUs shared with the load generator "
        f"(load average {result['meta']['loadavg_before']} before the run). CPU used during "
        f"the run: server {result['cpu_s']['server']:.1f} s, load generator "
        f"{result['cpu_s']['load_generator']:.1f} s.",
        "",
        "| requests | count | errors | per s | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, s in [*result["by_kind"].items(), ("all", result["all"])]:
        lines.append(
            f"| {kind} | {s['requests']} | {s['errors']} | {s['per_s']:.1f} | {s['p50_ms']:.1f} "
            f"| {s['p90_ms']:.1f} | {s['p99_ms']:.1f} | {s['max_ms']:.1f} |"
        )
    alone = result.get("polls_only")
    if alone is not None:
        s = alone["all"]
        lines += [
            "",
            f"The same {result['setting']['clients']} clients alone (no agents) for "
            f"{alone['wall_s']:.0f} s, on the same server: {s['requests']} requests, "
            f"{s['errors']} errors, p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms; server "
            f"CPU {alone['cpu_s']['server']:.1f} s "
            f"({alone['cpu_s']['server'] / max(1, s['requests']) * 1000:.1f} ms per request).",
        ]
    verdict = "met" if result["all"]["errors"] == 0 and result["all"]["p99_ms"] <= 50 else "not met"
    lines += [
        "",
        f"Goal (0 errors, p99 ≤ 50 ms over all requests): **{verdict}** — "
        f"{result['all']['errors']} errors, p99 {result['all']['p99_ms']:.1f} ms. "
        f"{result['tasks_posted']} profiling tasks ({SPECS_PER_TASK} ops each) were posted.",
    ]
    (RESULTS / f"{name}.md").write_text("\n".join([*lines, "", run_markdown()]) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--agents", type=int, default=4)
    p.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls")
    p.add_argument("--agent-interval", type=float, default=0.25, help="seconds between tasks")
    p.add_argument("--database-url", help="default: a fresh SQLite file")
    p.add_argument(
        "--polls-only-duration",
        type=float,
        default=20.0,
        help="then the clients alone for this long (0: skip), to separate the agents' share",
    )
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hwnas-load-"))
    url = args.database_url or f"sqlite:///{workdir / 'hwnas.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWNAS_")}
    env.update({"HWNAS_HOME": str(workdir), "HWNAS_DATABASE_URL": url, "HWNAS_WORKERS": "0"})
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    LutStore(url).close()  # migrate before the server and the set-up share the database
    loadavg = os.getloadavg()
    server = start_server(env, port, workdir / "server.log")
    try:
        keys = prepare(args, url, base_url)
        log(f"{args.clients} clients, {args.agents} agents for {args.duration:g} s on {base_url}")
        result = measured_load(args, base_url, keys, server.pid)
        if args.polls_only_duration > 0:
            log(f"then the {args.clients} clients alone for {args.polls_only_duration:g} s")
            alone = argparse.Namespace(**{**vars(args), "agents": 0})
            alone.duration = args.polls_only_duration
            result["polls_only"] = measured_load(alone, base_url, keys, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    result["setting"] = {
        "clients": args.clients,
        "agents": args.agents,
        "duration_s": args.duration,
        "poll_interval_s": args.poll_interval,
        "agent_interval_s": args.agent_interval,
        "database": url.split(":")[0].split("+")[0],
        "server": "hwnas serve: one uvicorn process, no local workers",
    }
    result["meta"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_before": [round(x, 2) for x in loadavg],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    write(result)
    log(json.dumps(result["all"]))


if __name__ == "__main__":
    main()
