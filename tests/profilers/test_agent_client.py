"""The agent client's pieces that need no server: the backoff schedule and the background
poster's batching (the whole loop runs against a real server in test_agents.py)."""

from __future__ import annotations

import threading
from typing import Any

from profilers.agent.client import Backoff
from profilers.agent.poster import MeasurementPoster


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.5, 30.0)
    assert [backoff.next() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_poster_batches_what_queued_during_a_post_and_keeps_tasks_apart() -> None:
    posted: list[tuple[str, list[int]]] = []
    first_post_started, release_first_post = threading.Event(), threading.Event()

    def post(task_id: str, body: dict[str, Any]) -> None:
        assert body["kind"] == "measurements" and body["profiler_version"]
        posted.append((task_id, [item["n"] for item in body["measurements"]]))
        if len(posted) == 1:
            first_post_started.set()
            release_first_post.wait(timeout=30)

    poster = MeasurementPoster(post, log=lambda message: None)
    poster.put("task-a", {"n": 0})
    assert first_post_started.wait(timeout=30)
    for n in range(1, 5):  # queued while the first POST is in flight
        poster.put("task-a" if n < 4 else "task-b", {"n": n})
    release_first_post.set()
    assert poster.close(timeout=30)
    assert posted == [("task-a", [0]), ("task-a", [1, 2, 3]), ("task-b", [4])]


def test_poster_survives_a_failing_post_and_reports_it() -> None:
    messages: list[str] = []

    def post(task_id: str, body: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    poster = MeasurementPoster(post, log=messages.append)
    poster.put("task-a", {"n": 0})
    assert poster.close(timeout=30)
    assert messages == ["results of task task-a not posted: RuntimeError: boom"]


def test_the_agent_imports_only_what_its_distribution_ships() -> None:
    """Everything the agent imports from this tree is listed in packaging/agent/pyproject.toml,
    and nothing heavy (torch, SQLAlchemy, FastAPI, the search or the service) comes with it."""
    import json
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    probe = (
        "import json, sys, profilers.agent.main, profilers.agent.client, profilers.agent.adb, "
        "profilers.agent.cache, profilers.fixed_costs, profilers.timers.ort, "
        "profilers.timers.litert; print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout)
    heavy = ("torch", "sqlalchemy", "fastapi", "platformdirs", "search", "service", "deploy")
    assert [m for m in loaded if m.split(".")[0] in heavy] == []
    ours = {m for m in loaded if m.split(".")[0] in ("common", "lut", "profilers")}
    config = tomllib.loads((repo / "packaging/agent/pyproject.toml").read_text())["tool"]
    shipped = set(config["setuptools"]["py-modules"])
    for package in config["setuptools"]["packages"]:
        shipped |= {package} | {
            f"{package}.{p.stem}" for p in (repo / package.replace(".", "/")).glob("*.py")
        }
    parents = {m.rsplit(".", 1)[0] for m in shipped if "." in m}  # their packages' __init__
    assert ours - shipped - parents == set()
