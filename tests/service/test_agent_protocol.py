"""Thin agents against a real server: the protocol version both sides check (an agent too old or
too new gets a 426 naming both versions), and a killed agent that loses no result it had
posted, measures nothing again it had finished, and downloads nothing twice."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lut.store import LutStore
from profilers.agent.cache import FileCache
from profilers.agent.client import AgentClient, AgentOptions, AgentRejected
from profilers.agent.wire import PROTOCOL_HEADER, PROTOCOL_VERSION
from profilers.protocol import QUICK
from profilers.timers.ort import OrtFileTimer
from service.crud.agent_tasks import create_opspec_tasks, micro_models
from tests.service.fixtures import REPO, Server, service_env, start_server, stop_process

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.timeout(600)
THIN = {"backend": "onnxruntime", "threads": 1, "conversion": "server"}


def _post(
    server: Server, key: str, path: str, version: str | None, **body: object
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if version is not None:
        headers[PROTOCOL_HEADER] = version
    return httpx.post(f"{server.base_url}{path}", headers=headers, json=body, timeout=30)


def test_agents_of_another_protocol_version_are_told_both_versions(
    service_server: Server, tmp_path: Path
) -> None:
    key = service_server.key("agent")
    register = {"name": "versioned", "fingerprint": THIN}
    old = _post(service_server, key, "/agents/register", None, **register)  # before versions
    assert old.status_code == 426, old.text
    assert old.json()["detail"].startswith(
        f"agent protocol 1 is too old for this server (protocol {PROTOCOL_VERSION})"
    )
    new = _post(service_server, key, "/agents/register", str(PROTOCOL_VERSION + 1), **register)
    assert new.status_code == 426
    assert f"agent protocol {PROTOCOL_VERSION + 1} is newer than this server's" in new.text
    garbled = _post(service_server, key, "/agents/register", "two", **register)
    assert garbled.status_code == 400 and PROTOCOL_HEADER in garbled.text

    same = _post(service_server, key, "/agents/register", str(PROTOCOL_VERSION), **register)
    assert same.status_code == 200, same.text
    device = same.json()["device"]
    path = f"/agents/{same.json()['agent_id']}"
    store = LutStore(f"sqlite:///{Path(service_server.env['HWNAS_HOME']) / 'hwnas.db'}")
    try:
        assert store.device(device["id"]).fingerprint["converter"].startswith("torch ")
    finally:
        store.close()
    claimed = _post(service_server, key, f"{path}/tasks/claim", str(PROTOCOL_VERSION))
    assert claimed.json() == {"task": None}
    # Results written in another version than the header's: refused with both versions.
    result = {"kind": "error", "error": "x", "protocol": 1}
    refused = _post(service_server, key, f"{path}/tasks/{'0' * 32}/results", "2", **result)
    assert refused.status_code == 426 and "protocol 1 is too old" in refused.text

    # The agent itself stops with the server's line (exit 1 from the command line).
    client = AgentClient(
        AgentOptions(server=service_server.base_url, key=key, name="versioned"),
        timer=OrtFileTimer(protocol=QUICK),
        cache=FileCache(tmp_path / "cache"),
        log=lambda message: None,
    )
    client.http.headers[PROTOCOL_HEADER] = str(PROTOCOL_VERSION + 1)  # a newer agent
    with pytest.raises(
        AgentRejected, match=f"newer than this server's \\(protocol {PROTOCOL_VERSION}\\)"
    ):
        client.run()


def _start_agent(server: Server, key: str, cache: Path, log: Path) -> subprocess.Popen[bytes]:
    """The thin agent's own command (`hwnas-agent`), from this checkout."""
    command = [sys.executable, "-m", "profilers.agent.main", "--server", server.base_url]
    command += ["--name", "killed", "--backend", "onnxruntime", "--quick", "--poll", "0.2"]
    command += ["--cache", str(cache)]
    env = {**server.env, "HWNAS_AGENT_KEY": key}
    return subprocess.Popen(
        command, env=env, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _settled(read: object) -> dict:  # type: ignore[type-arg]
    """`read()` once two reads a second apart agree."""
    last = read()  # type: ignore[operator]
    while True:
        time.sleep(1.0)
        now = read()  # type: ignore[operator]
        if now.keys() == last.keys():
            return now  # type: ignore[no-any-return]
        last = now


def test_a_killed_agent_loses_no_posted_result_and_redoes_nothing_finished(
    tmp_path: Path,
) -> None:
    from search.spaces.base import space_from_string

    # A short lease, so the killed agent's task is claimed again soon.
    env = service_env(tmp_path / "home", HWNAS_AGENT_TASK_LEASE_S="3")
    base_url, process = start_server(env)
    server = Server(base_url, env, process)
    store = LutStore(f"sqlite:///{tmp_path / 'home' / 'hwnas.db'}")
    key, cache, log = server.key("agent"), tmp_path / "agent-cache", tmp_path / "agent.log"
    specs = [s for s in space_from_string("fbnet-tiny").distinct_opspecs() if not s.is_identity]
    specs = sorted(specs, key=lambda s: s.key)[:36]  # enough that the kill comes mid-way
    first = _start_agent(server, key, cache, log)
    try:
        _wait(lambda: store.devices("killed"), 120, "registration")
        device = store.resolve_device("killed")
        artifacts = micro_models(tmp_path / "home" / "artifacts")
        create_opspec_tasks(store, device, specs, 4, None, artifacts=artifacts)
        _wait(lambda: store.count_measurements(device) >= 5, 300, "five results")
        first.send_signal(signal.SIGKILL)  # no chance to post what it holds
        first.wait(timeout=30)
        posted = _settled(lambda: store.lookup(device, specs))  # a POST may still land
        downloaded_before = {p.name for p in FileCache(cache)}
        assert 5 <= len(posted) < len(specs)

        second = _start_agent(server, key, cache, log)
        try:
            _wait(lambda: not store.missing(device, specs), 300, "every op measured")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0, log.read_text()[-2000:]
        after = store.lookup(device, specs)
    finally:
        store.close()
        stop_process(process)
    # Nothing posted was lost or replaced.
    assert {k: m.samples_ms for k, m in after.items() if k in posted} == {
        k: m.samples_ms for k, m in posted.items()
    }
    # The restarted agent measured only what had not been posted, downloaded only new files.
    stopped = re.findall(
        r"stopped; measured (\d+) op\(s\), downloaded (\d+) file\(s\)", log.read_text()
    )
    assert len(stopped) == 1, log.read_text()[-2000:]
    measured, downloaded = map(int, stopped[0])
    assert measured == len(specs) - len(posted)
    new_files = {p.name for p in FileCache(cache)} - downloaded_before
    assert downloaded == len(new_files) <= measured
