"""README's main job, `hwnas demo`, end to end on a fresh HWNAS_HOME (its own module, so that
pytest-xdist's per-file scheduling runs it beside the other long tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.service.fixtures import hwnas


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    """README's main job, cut short (quick protocol, 2 architectures, 1 epoch, ONNX only)."""
    out = tmp_path / "demo"
    args = ["demo", "--quick", "-n", "2", "--epochs", "1", "--export", "onnx", "--out", str(out)]
    result = hwnas(tmp_path / "home", *args)
    assert "4/4" in result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["predicted_latency_ms"]["this-cpu"] <= metrics["budgets_ms"]["this-cpu"]
    card = json.loads((out / "card.json").read_text())
    assert card["latency_ms"]["measured_here"]["onnx"]["lut_unit"] == "this-cpu"
    assert (out / "card.md").exists() and (out / "export" / "model.onnx").exists()
