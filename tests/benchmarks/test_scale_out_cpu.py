"""scale_out's CPU summaries: the budget units' usage summed a job (the weight unit left out), and
the same two units side by side against one after the other, on Ray and in plain processes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import _scale_out_cpu  # the benchmarks are scripts, not a package


def _unit(name: str, budget: float | None, cpu: float, wall: float) -> dict[str, Any]:
    tagged = {} if budget is None else {"budget_ms": budget}
    return {
        "unit": name,
        **tagged,
        "cpu_s": cpu,
        "wall_s": wall,
        "waited_for_cpu_s": wall - cpu,
        "torch_threads": 1,
        "torch_interop_threads": 2,
        "os_threads": 22,
        "threads_cpu_s": {"ray::_run_unit": cpu},
        "context_switches": [10, int(wall - cpu) * 100],
    }


def _run(cpu: float, wall: float) -> dict[str, Any]:
    """A job of a weight unit and two budget units, each budget unit using `cpu` and `wall`."""
    units = [_unit("weights", None, 5.0, 5.0)]
    return {"units": units + [_unit(f"budget-{b}", b, cpu, wall) for b in (4.5, 5.5)]}


def test_the_budget_units_usage_is_summed_a_job_without_the_weight_unit() -> None:
    usage = _scale_out_cpu.units_usage([_run(10.0, 10.0), _run(11.0, 12.0), _run(12.0, 20.0)])
    assert usage["cpu_s"] == 22.0 and usage["wall_s"] == 24.0
    assert usage["waited_for_cpu_s"] == 2.0
    assert usage["preempted"] == 200  # the median job's two budget units, 100 times each
    assert usage["threads_cpu_s"] == {"ray::_run_unit": 22.0}
    assert usage["torch_threads"] == [(1, 2)] and usage["os_threads"] == [22]


def test_side_by_side_is_set_against_one_after_the_other_with_and_without_ray() -> None:
    runs = {
        "one": [_run(10.0, 10.0)],
        "two": [_run(11.0, 16.0)],
        "plain_alone": [_run(12.0, 12.0)],
        "plain_pair": [_run(12.6, 15.0)],
    }
    paired = _scale_out_cpu.paired_units(runs, [4.5, 5.5])
    assert paired["usage"]["two"] == {"cpu_s": 22.0, "wall_s": 32.0, "waited_for_cpu_s": 10.0}
    assert paired["cpu_over_alone"] == pytest.approx({"two": 1.1, "plain_pair": 1.05})
    assert paired["wall_over_alone"] == pytest.approx({"two": 1.6, "plain_pair": 1.25})
