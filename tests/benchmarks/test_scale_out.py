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


def test_the_split_bound_assigns_whole_units_to_nodes() -> None:
    """Units of 6, 5, 4 and 3 s after a serial 4 s: Amdahl's bound halves their 18 s, but whole
    units split at best 9 / 9 (6 + 3, 5 + 4); with 7, 5, 4 and 2 the best is 9 / 9 as well, and
    with 10, 4, 2 and 2 the largest unit alone sets the span."""

    def run(sizes: list[float]) -> dict[str, Any]:
        units = [{"unit": "weights", "wall_s": 4.0}]
        units += [
            {"unit": f"b{i}", "budget_ms": float(i), "wall_s": s} for i, s in enumerate(sizes)
        ]
        span = sum(sizes)
        return {"wall_s": 4.0 + span, "phases": {"budget_span_s": span}, "units": units}

    assert scale_out.split_bound(run([6, 5, 4, 3]), nodes=2) == pytest.approx(13 / 22)
    assert scale_out.split_bound(run([7, 5, 4, 2]), nodes=2) == pytest.approx(13 / 22)
    assert scale_out.split_bound(run([10, 4, 2, 2]), nodes=2) == pytest.approx(14 / 22)
    assert scale_out.amdahl_bound(run([10, 4, 2, 2]), nodes=2) == pytest.approx(13 / 22)
