"""GET /devices/{name}/heatmap and /devices/{name}/calibration: the LUT's medians per layer and
candidate (null where it lacks an op), and each end-to-end run's measured latency beside the
LUT's prediction, before and after the stored calibration."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lut.measurement import Measurement
from lut.predictor import predict
from lut.store import LutStore
from profilers.calibrate import fit_from_store
from search.spaces.base import decode_string, space_from_string
from tests.service.fixtures import Server

SPACE = "fbnet-tiny@c1_n3"


def _add_end_to_end_runs(home: Path, count: int = 6) -> list[tuple[str, float, float]]:
    """Times standing in for a device's end-to-end runs (1.2x the LUT sum plus 0.1 ms), and a
    calibration fitted on them; returns (arch, predicted, measured) per run."""
    store = LutStore(f"sqlite:///{home / 'hwnas.db'}")
    try:
        device = store.resolve_device("cpu-synth")
        space = space_from_string(SPACE)
        runs = []
        for arch in space.iter_random(0, count):
            text = arch.to_string()
            specs = decode_string(text)
            predicted = predict(specs, store.lookup(device, specs), device.fixed_costs).latency_ms
            measured = 1.2 * predicted + 0.1
            store.add_e2e(
                device, text, space.spec_string, Measurement.from_samples([measured] * 5, warmup=0)
            )
            runs.append((text, predicted, measured))
        fit_from_store(store, device, space, decode_string)
        return runs
    finally:
        store.close()


def test_heatmap_of_a_lut(server_with_lut: Server) -> None:
    with server_with_lut.client(server_with_lut.key("user", "lab")) as client:
        heat = client.get("/devices/cpu-synth/heatmap", params={"space": SPACE}).json()
        space = space_from_string(SPACE)
        assert heat["layers"] == [slot.label for slot in space.layers]
        assert heat["candidates"][0] == list(space.layers[0].candidates)
        assert heat["missing"] == 0 and heat["backend"] == "synthetic"
        assert all(value is not None and value >= 0 for row in heat["median_ms"] for value in row)
        # another resolution: the LUT has none of its ops
        assert (
            client.get("/devices/cpu-synth/heatmap", params={"space": "fbnet-tiny"}).status_code
            == 200
        )
        wider = client.get(
            "/devices/cpu-synth/heatmap", params={"space": "fbnet-tiny@r32_c1_n3"}
        ).json()
        assert wider["missing"] > 0 and None in wider["median_ms"][0]
        assert client.get("/devices/nowhere/heatmap", params={"space": SPACE}).status_code == 404
        assert (
            client.get("/devices/cpu-synth/heatmap", params={"space": "no-such"}).status_code == 422
        )
        assert client.get("/devices/cpu-synth/heatmap").status_code == 422
    unkeyed = httpx.get(f"{server_with_lut.base_url}/devices/cpu-synth/heatmap?space={SPACE}")
    assert unkeyed.status_code == 401


def test_calibration_runs_predicted_against_measured(server_with_lut: Server) -> None:
    with server_with_lut.client(server_with_lut.key("user", "lab")) as client:
        before = client.get("/devices/cpu-synth/calibration", params={"space": SPACE}).json()
        assert before["runs"] == [] and before["calibration"] is None
        runs = _add_end_to_end_runs(Path(server_with_lut.env["HWNAS_HOME"]))
        view = client.get("/devices/cpu-synth/calibration", params={"space": SPACE}).json()
    assert [r["arch"] for r in view["runs"]] == [arch for arch, _, _ in runs]
    for shown, (_, predicted, measured) in zip(view["runs"], runs, strict=True):
        assert shown["predicted_ms"] == pytest.approx(predicted)
        assert shown["measured_ms"] == pytest.approx(measured)
        assert shown["calibrated_ms"] == pytest.approx(measured, rel=0.05)
    assert view["calibration"]["n_points"] == len(runs) and view["calibration"]["form"]
