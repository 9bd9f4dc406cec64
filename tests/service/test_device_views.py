"""GET /devices/{name}/heatmap and /devices/{name}/calibration: the LUT's medians per layer and
candidate (null where it lacks an op), and each end-to-end run's measured latency beside the
LUT's prediction, before and after the stored calibration."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from search.spaces.base import space_from_string
from tests.service.fixtures import Server, seed_end_to_end_runs

SPACE = "fbnet-tiny@c1_n3"


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
        home = Path(server_with_lut.env["HWNAS_HOME"])
        runs = seed_end_to_end_runs(f"sqlite:///{home / 'hwnas.db'}", "cpu-synth", SPACE)
        view = client.get("/devices/cpu-synth/calibration", params={"space": SPACE}).json()
    assert [r["arch"] for r in view["runs"]] == [arch for arch, _, _ in runs]
    for shown, (_, predicted, measured) in zip(view["runs"], runs, strict=True):
        assert shown["predicted_ms"] == pytest.approx(predicted)
        assert shown["measured_ms"] == pytest.approx(measured)
        assert shown["calibrated_ms"] == pytest.approx(measured, rel=0.05)
    assert view["calibration"]["n_points"] == len(runs) and view["calibration"]["form"]
