"""The order a job's budget units start in on a cluster: longest first."""

from __future__ import annotations

from service.worker.units import FileSink, SearchUnit, longest_first


def _unit(budget: float | None) -> SearchUnit:
    name = "weights" if budget is None else f"budget-{budget:g}"
    return SearchUnit("budget", name, {}, "/runs", 0, "sqlite://", "digits", FileSink(), budget)


def test_the_largest_budget_starts_first() -> None:
    """Its child is the largest to train: started last, it would keep one node busy after the
    others finished."""
    units = [_unit(2.5), _unit(5.5), _unit(3.5), _unit(4.5)]
    order = [unit.name for unit in longest_first(units)]
    assert order == ["budget-5.5", "budget-4.5", "budget-3.5", "budget-2.5"]
    assert [unit.name for unit in units] == ["budget-2.5", "budget-5.5", "budget-3.5", "budget-4.5"]
