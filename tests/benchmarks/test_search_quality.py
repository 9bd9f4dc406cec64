"""search_quality's verdict from per-seed accuracies, on hand-computed numbers: the paired
difference's mean and standard error, "beats" only above two standard errors, the measured
limit, and the `results` list the issue's JSON schema names."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import search_quality  # the benchmarks are scripts, not a package


def _result(budget: float, method: str, accs: list[float], over: float = 1.0) -> dict:
    return {
        "budget_ms": budget,
        "method": method,
        "seeds": list(range(len(accs))),
        "per_seed": accs,
        "measured_over_budget_max": over,
        "archs": ["a"] * len(accs),
    }


def test_paired_difference_mean_and_standard_error() -> None:
    results = [
        _result(1.0, "hardcore", [0.80, 0.82, 0.84]),
        _result(1.0, "random", [0.70, 0.74, 0.72]),
    ]
    d = search_quality.paired(results, 1.0, "hardcore", "random")
    # differences 0.10, 0.08, 0.12: mean 0.10, sd 0.02, se 0.02 / sqrt(3)
    assert d is not None and d["n"] == 3
    assert d["mean"] == pytest.approx(0.10)
    assert d["se"] == pytest.approx(0.02 / math.sqrt(3))


def test_verdict_needs_two_budgets_beyond_two_standard_errors() -> None:
    budgets = [1.0, 2.0, 3.0]
    results = []
    for b in budgets:
        results.append(_result(b, "hardcore", [0.80, 0.82, 0.84], over=1.02))
        results.append(_result(b, "mobilenetv2", [0.70, 0.72, 0.74]))
    # random: far behind at 1 and 2 ms; at 3 ms the differences 0.10, -0.08, 0.12 are noise
    results.append(_result(1.0, "random", [0.70, 0.72, 0.74]))
    results.append(_result(2.0, "random", [0.70, 0.72, 0.74]))
    results.append(_result(3.0, "random", [0.70, 0.90, 0.72]))
    v = search_quality.verdict(results, budgets)
    assert [b["beats_both"] for b in v["per_budget"]] == [True, True, False]
    assert v["budgets_beaten"] == 2 and v["holds"] is True
    results[0]["measured_over_budget_max"] = 1.06  # one hardcore result over 1.05x its budget
    assert search_quality.verdict(results, budgets)["holds"] is False


def test_one_seed_gives_no_verdict() -> None:
    results = [_result(1.0, "hardcore", [0.9]), _result(1.0, "random", [0.1])]
    results.append(_result(1.0, "mobilenetv2", [0.1]))
    v = search_quality.verdict(results, [1.0])
    assert v["per_budget"][0]["versus"]["random"]["se"] is None
    assert v["holds"] is False


def test_results_list_per_budget_and_method_in_seed_order() -> None:
    row = {"test_accuracy": 0.5, "measured_ms": 1.1, "arch": "x"}
    per_seed = {
        1: [{"hardcore": {**row, "test_accuracy": 0.6}}],
        0: [{"hardcore": row, "random": {**row, "measured_ms": 0.9}}],
    }
    out = search_quality.results_list(per_seed, [1.0])
    assert [(r["method"], r["seeds"], r["per_seed"]) for r in out] == [
        ("hardcore", [0, 1], [0.5, 0.6]),
        ("random", [0], [0.5]),
    ]
    assert out[0]["measured_over_budget_max"] == pytest.approx(1.1)


def test_a_budget_no_mobilenetv2_width_fits_is_judged_against_random() -> None:
    results = [
        _result(1.0, "hardcore", [0.80, 0.82, 0.84]),
        _result(1.0, "random", [0.70, 0.72, 0.74]),
    ]
    v = search_quality.verdict(results, [1.0])
    assert v["per_budget"][0]["versus"]["mobilenetv2"] is None
    assert v["per_budget"][0]["beats_both"] is True


def test_span_of_another_space_or_a_missing_file_says_nothing(tmp_path: Path) -> None:
    class Space:
        name = "proxyless-tiny"

    record = {"runs": [{"arch": "x", "test_accuracy": 0.7}], "summary": {"span_pp": 10.0}}
    span = tmp_path / "span.json"
    span.write_text(json.dumps({"protocol": {"space": "fbnet-tiny"}, "datasets": {"d": record}}))
    assert search_quality.span_of(span, Space(), "d") == {}
    assert search_quality.span_of(tmp_path / "missing.json", Space(), "d") == {}
    Space.name = "fbnet-tiny"
    assert search_quality.span_of(span, Space(), "d") == record
    assert search_quality.span_of(span, Space(), "other") == {}
