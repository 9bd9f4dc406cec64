"""GET /jobs/{id}/layers and /jobs/{id}/history: the chosen network's per-layer latency adds up to
the predicted latency; the probabilities come from the run's history, per budget, thinned to a
bounded number of steps; a job without an architecture is a 409, another tenant's a 404."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from lut.store import LutStore
from search.cost import build_cost_model
from search.spaces.base import space_from_string
from service.api.routes.job_views import MAX_STEPS_SHOWN, budget_layers, probability_run
from tests.service.fixtures import (
    Server,
    seed_synthetic_lut,
)

SPACE = "fbnet-tiny@c1_n3"


@pytest.fixture
def seeded_store(tmp_path: Path) -> Iterator[LutStore]:
    url = f"sqlite:///{tmp_path / 'lut.db'}"
    seed_synthetic_lut(url, "cpu-synth", num_classes=3)
    store = LutStore(url)
    try:
        yield store
    finally:
        store.close()


def test_layers_add_up_to_the_predicted_latency(seeded_store: LutStore) -> None:
    space = space_from_string(SPACE)
    arch = space.sample(random.Random(3))
    model = build_cost_model(seeded_store, seeded_store.resolve_device("cpu-synth"), space)
    sample = [s.candidates.index(t) for s, t in zip(space.layers, arch.choices, strict=True)]
    result = {
        "arch": arch.to_string(),
        "predicted_latency_ms": {"cpu-synth": model.cost(sample), "gone": 1.0},
        "calibrated": {"cpu-synth": False},
        "budgets_ms": {"cpu-synth": 3.0},
    }
    layers = budget_layers(seeded_store, result)
    assert layers.budget_ms == 3.0 and layers.arch == arch.to_string()
    (device,) = layers.devices
    assert [layer.choice for layer in device.layers] == list(arch.choices)
    assert [layer.layer for layer in device.layers] == [s.label for s in space.layers]
    shares = sum(layer.predicted_ms for layer in device.layers)
    assert device.total_ms == pytest.approx(device.constant_ms + shares)
    assert device.total_ms == pytest.approx(result["predicted_latency_ms"]["cpu-synth"])
    assert "gone" in layers.errors  # a device whose LUT went away: named, not a failure


def test_history_is_thinned_and_labelled(tmp_path: Path) -> None:
    space = space_from_string(SPACE)
    widths = [len(slot.candidates) for slot in space.layers]
    path = tmp_path / "history.jsonl"
    with path.open("w") as out:
        for step in range(1, 451):
            probabilities = [[1.0 / w] * w for w in widths]
            out.write(
                json.dumps(
                    {
                        "step": step,
                        "expected_latency_ms": {"d": 2.0},
                        "probabilities": probabilities,
                    }
                )
                + "\n"
            )
        out.write('{"step": 451, "expected_')  # a line being written
    run = probability_run(SPACE, 2.0, path)
    assert run.budget_ms == 2.0
    assert len(run.steps) <= MAX_STEPS_SHOWN and run.steps[0] == 1 and run.steps[-1] == 450
    assert run.steps == sorted(run.steps)
    assert run.layers == [slot.label for slot in space.layers]
    assert [len(c) for c in run.candidates] == widths
    assert len(run.probabilities) == len(run.steps) == len(run.expected_latency_ms)


def test_the_routes_of_a_queued_job(server_with_lut: Server) -> None:
    body = {
        "space": "fbnet-tiny",
        "dataset": "digits",
        "devices": ["cpu-synth"],
        "budgets": {"cpu-synth": [2.0, 3.0]},
    }
    with server_with_lut.client(server_with_lut.key("user", "lab")) as client:
        job_id = client.post("/jobs", json=body).json()["id"]
        refused = client.get(f"/jobs/{job_id}/layers")
        assert refused.status_code == 409 and "queued" in refused.json()["detail"]
        assert client.get(f"/jobs/{job_id}/history").json() == {"job_id": job_id, "runs": []}
        run_dir = (
            Path(server_with_lut.env["HWNAS_HOME"]) / "artifacts" / "jobs" / job_id / "budget-2"
        )
        run_dir.mkdir(parents=True)
        line = {"step": 5, "expected_latency_ms": {"cpu-synth": 2.5}, "probabilities": [[0.5, 0.5]]}
        (run_dir / "history.jsonl").write_text(json.dumps(line) + "\n")
        (run,) = client.get(f"/jobs/{job_id}/history").json()["runs"]
        assert run["budget_ms"] == 2.0 and run["steps"] == [5]
        assert run["layers"] == ["layer 1"]  # a history that does not fit the space: generic labels
    with server_with_lut.client(server_with_lut.key("user", "other")) as stranger:
        assert stranger.get(f"/jobs/{job_id}/layers").status_code == 404
        assert stranger.get(f"/jobs/{job_id}/history").status_code == 404
