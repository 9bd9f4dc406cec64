"""scale_out's breakdown of a Ray job's wall time from its units' events, and Amdahl's bound on
the two-node ratio it gives."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import scale_out  # the benchmarks are scripts, not a package


def _event(kind: str, unit: str, budget: float | None = None, **rest: Any) -> dict[str, Any]:
    tagged = {} if budget is None else {"budget_ms": budget}
    return {"type": kind, "unit": unit, **tagged, **rest}


def test_a_one_node_job_s_phases_and_bound() -> None:
    """Weights 2–6 s, then two budget units one after the other (7–12 s, 12–17 s); 20 s in
    all: 10 s of budget units divide over nodes, the other 10 s do not."""
    events = [
        (_event("unit_started", "weights"), 2.0),
        (_event("unit_finished", "weights"), 6.0),
        (_event("unit_started", "budget-3", 3.0), 7.0),
        ({"type": "search", "budget_ms": 3.0}, 8.0),
        (_event("unit_finished", "budget-3", 3.0), 12.0),
        (_event("unit_started", "budget-4", 4.0), 12.0),
        ({"type": "search", "budget_ms": 4.0}, 14.0),
        (_event("unit_finished", "budget-4", 4.0), 17.0),
    ]
    phases = scale_out.unit_phases(events, wall=20.0)
    assert phases == {
        "before_units_s": 2.0,
        "weights_s": 4.0,
        "budget_span_s": 10.0,
        "budget_units_sum_s": 10.0,
        "after_units_s": 3.0,
        "unit_setup_s": 1.5,
    }
    bound = scale_out.amdahl_bound({"wall_s": 20.0, "phases": phases}, nodes=2)
    assert bound == pytest.approx(0.75)
