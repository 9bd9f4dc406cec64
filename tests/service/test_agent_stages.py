"""A whole job with a real profiler agent: dataset upload → job → the agent profiles what the
device's LUT lacks (state `profiling`) → search, training, ONNX export → the agent times the
exported model on the target (state `measuring`) → the card shows it, and which agent took
it → downloads. The device is the operator's, shared with the job's tenant."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from lut.measurement import Measurement
from lut.store import LutStore
from tests.service.agent_helpers import start_agent
from tests.service.fixtures import Server, service_env, start_server, stop_process, write_npz

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.timeout(900)

DEVICE = "lab-cpu"
LEFT_TO_PROFILE = 3  # LUT entries the agent has to measure during the job


def seed_all_but_a_few(url: str, space: str) -> list[str]:
    """The LUT of this machine's ONNX Runtime fingerprint (what the thin agent will register)
    with synthetic entries for all but LEFT_TO_PROFILE ops and no fixed costs; returns the
    left keys."""
    from profilers.agent.wire import CONVERSION_FIELD
    from profilers.timers.ort import OrtFileTimer
    from search.spaces.base import space_from_string
    from search.spaces.grammar import SpaceParams
    from service.crud.agent_tasks import registered_fingerprint

    timer = OrtFileTimer(threads=1)
    fingerprint = registered_fingerprint({**timer.fingerprint(), CONVERSION_FIELD: "server"})
    specs = space_from_string(space, SpaceParams(in_channels=1, num_classes=3)).distinct_opspecs()
    specs = sorted((s for s in specs if not s.is_identity), key=lambda s: s.key)
    store = LutStore(url)
    try:
        device = store.register_device(DEVICE, fingerprint)
        entry = Measurement.from_samples([0.05] * 7, warmup=0)
        store.add_measurements(device, [(s, entry) for s in specs[LEFT_TO_PROFILE:]])
    finally:
        store.close()
    return [s.key for s in specs[:LEFT_TO_PROFILE]]


def _sse_states(text: str) -> list[str]:
    states = []
    for block in text.split("\n\n"):
        kind = re.search(r"^event: (\S+)$", block, re.M)
        data = re.search(r"^data: (.*)$", block, re.M)
        if kind and data and kind.group(1) == "state":
            states.append(json.loads(data.group(1))["state"])
    return states


def test_whole_job_with_an_agent_profiling_and_measuring_on_target(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'hwnas.db'}"
    env = service_env(home, HWNAS_WORKERS="1", HWNAS_POLL_S="0.5", HWNAS_AGENT_WAIT_S="300")
    home.mkdir(parents=True)
    left = seed_all_but_a_few(url, "fbnet-tiny")
    base_url, server_process = start_server(env, log=tmp_path / "server.log")
    server = Server(base_url, env, server_process)
    agent_log = tmp_path / "agent.log"
    agent = start_agent(env, base_url, server.key("agent"), DEVICE, agent_log)
    try:
        with server.client(server.key("admin")) as admin:  # the operator's device, for "lab"
            shared = admin.post(f"/devices/{DEVICE}/shares", json={"tenant": "lab"})
            assert shared.json() == {"name": DEVICE, "owner": "default", "shared_with": ["lab"]}
        with server.client(server.key("user", "lab")) as client:
            npz = write_npz(tmp_path / "squares.npz")
            dataset = client.post("/datasets", files={"file": ("squares.npz", npz.read_bytes())})
            assert dataset.status_code == 201, dataset.text
            created = client.post(
                "/jobs",
                json={
                    "space": "fbnet-tiny",
                    "dataset": dataset.json()["id"],
                    "devices": [DEVICE],
                    "budgets": {DEVICE: 50.0},
                    "epochs": 1,
                    "warmup_epochs": 0,
                    "child_epochs": 1,
                    "batch_size": 32,
                    "export_formats": ["onnx"],
                },
            )
            assert created.status_code == 202, created.text
            job_id = created.json()["id"]
            with client.stream("GET", f"/jobs/{job_id}/events", timeout=800) as stream:
                states = _sse_states("".join(stream.iter_text()))
            job = client.get(f"/jobs/{job_id}").json()
            assert job["state"] == "done", job["error"]
            assert states[:2] == ["queued", "profiling"] and states[-2:] == ["measuring", "done"]
            assert "exporting" in states

            # The agent filled the LUT: the ops left out and the fixed costs.
            device = client.get(f"/devices/{DEVICE}", params={"space": "fbnet-tiny@c1_n3"}).json()
            [lut] = device["luts"]
            assert lut["coverage"][0]["complete"] is True and lut["fixed_costs"] is not None
            exported = client.get(f"/luts/{DEVICE}").json()
            keys = {m["key"] for m in exported["measurements"]}
            assert set(left) <= keys

            # Measured on the target by its agent, next to the prediction on the card.
            target = job["metrics"]["target"]["target_measurements"][DEVICE]
            assert target["status"] == "measured" and target["card_updated"], target
            card = client.get(f"/models/{job_id}/card.json").json()
            on_target = card["latency_ms"]["measured_on_target"][DEVICE]["onnx"]
            assert on_target["median_ms"] == pytest.approx(target["median_ms"])
            assert on_target["taken_by"]["agent"] == target["agent"]
            assert on_target["taken_by"]["device"] == DEVICE
            card_md = client.get(f"/models/{job_id}/card.md").text
            assert f"{DEVICE} (measured on target by agent {target['agent']})" in card_md
            assert DEVICE in card["latency_ms"]["predicted"]
            model = client.get(f"/models/{job_id}/onnx")
            assert model.status_code == 200 and len(model.content) > 1000
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=60)
        stop_process(server_process)
    text = agent_log.read_text()
    assert code == 0, text[-2000:]
    assert "measuring fixed costs" in text and "end to end" in text
