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


def _record(seeds: dict[int, float], lo: float, run: str, **meta: object) -> dict:
    """A one-budget result file as a per-seed run writes it: hardcore at `seeds`' accuracy,
    random 0.1 behind, both measured at 0.2 ms."""
    row = {"arch": "a", "measured_ms": 0.2, "predicted_ms": 0.2, "limit_ms": lo + 0.09}
    per_seed = {
        str(s): [
            {"hardcore": {**row, "test_accuracy": a}, "random": {**row, "test_accuracy": a - 0.1}}
        ]
        for s, a in seeds.items()
    }
    return {
        "space": "proxyless-tiny",
        "dataset": "cluttered-mnist",
        "test_images": 2000,
        "synthetic": True,
        "accuracy_span_pp": None,
        "random_archs_under_budget": [{"budget_ms": lo + 0.5 * 0.2, "n": 0, "mean": None}],
        "per_seed": per_seed,
        "run": {"commit": run, "date": "2026-12-06"},
        "meta": {
            "dataset": "cluttered-mnist",
            "epochs": 4,
            "child_epochs": 8,
            "child_shift_px": 2,
            "weight_sampling": "sandwich",
            "fractions": "0.5",
            "backend": "onnxruntime, 1 thread",
            "space_range_ms": [lo, lo + 0.2],
            **meta,
        },
    }


def test_merge_keeps_each_seeds_budgets_and_run(tmp_path: Path) -> None:
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    files[0].write_text(json.dumps(_record({0: 0.80, 1: 0.82}, 0.1, "c0")))
    files[1].write_text(json.dumps(_record({2: 0.84}, 0.15, "c1")))  # another LUT's range
    first, per_seed, budgets, runs = search_quality.gather(files)
    assert sorted(per_seed) == [0, 1, 2]
    assert budgets[0] == [pytest.approx(0.2)] and budgets[2] == [pytest.approx(0.25)]
    assert runs[1]["commit"] == "c0" and runs[2]["commit"] == "c1"
    payload = search_quality.assemble(
        {
            "space": "proxyless-tiny",
            "dataset": "cluttered-mnist",
            "accuracy_span_pp": None,
            "random_archs_under_budget": first["random_archs_under_budget"],
        },
        first["meta"],
        search_quality.budgets_of(first),
        per_seed,
        budgets,
        runs,
    )
    hardcore = payload["results"][0]
    assert hardcore["seeds"] == [0, 1, 2] and hardcore["per_seed"] == [0.80, 0.82, 0.84]
    # each seed's measured latency against its own budget: 0.2/0.2 and 0.2/0.25
    assert hardcore["measured_over_budget_max"] == pytest.approx(1.0)
    assert payload["verdict"]["per_budget"][0]["versus"]["random"]["mean"] == pytest.approx(0.1)
    text = "\n".join(search_quality.markdown(payload))
    assert "seed 2: commit c1" in text and "0.2500" in text
    # merging the merged result again keeps what it recorded per seed
    files.append(tmp_path / "merged.json")
    files[2].write_text(json.dumps(payload | {"run": {"commit": "m"}}))
    again = search_quality.gather([files[2]])
    assert again[3][2]["commit"] == "c1" and again[2][2] == [pytest.approx(0.25)]


def test_merge_refuses_another_protocol_or_a_seed_twice(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_record({0: 0.8}, 0.1, "c0")))
    b.write_text(json.dumps(_record({1: 0.8}, 0.1, "c1", child_epochs=4)))
    with pytest.raises(search_quality.MergeError, match="child_epochs"):
        search_quality.gather([a, b])
    older = _record({1: 0.8}, 0.1, "c1")
    for by_method in older["per_seed"]["1"]:
        for row in by_method.values():
            del row["limit_ms"]  # the baselines searched under the bare budget then
    b.write_text(json.dumps(older))
    with pytest.raises(search_quality.MergeError, match="the baselines' limit"):
        search_quality.gather([a, b])
    b.write_text(json.dumps(_record({0: 0.8}, 0.1, "c1")))
    with pytest.raises(search_quality.MergeError, match="seed 0 is in two"):
        search_quality.gather([a, b])
    with pytest.raises(search_quality.MergeError, match="not a readable result"):
        search_quality.gather([tmp_path / "missing.json"])


def test_every_method_searches_under_hardcores_limit() -> None:
    device = search_quality.c.DEVICE
    job = [{"strategy_report": {"limit_ms": {device: 0.94}}}]
    assert search_quality.limit_of(job, 0, 1.0) == 0.94
    assert search_quality.limit_of(None, 0, 1.0) == 1.0  # no hardcore: the budget itself
    row = {"test_accuracy": 0.5, "measured_ms": 0.9, "arch": "x", "limit_ms": 0.94}
    per_seed = {0: [{"hardcore": row, "random": row}]}
    payload = {"per_seed": per_seed, "results": search_quality.results_list(per_seed, [1.0])}
    assert search_quality.limits_line(payload)[-1].endswith("0.9400 ms (94.0% of 1.0000).")


def test_measured_latency_is_the_median_of_rounds_per_space(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each space's networks are timed together (one call per space, every network in each
    round), and a row keeps the median: one slow round does not decide a result."""
    calls = []

    def rounds(bench: object, space: str, texts: list[str], n: int) -> dict[str, list[float]]:
        calls.append((space, texts, n))
        return {t: [0.5, 0.1, 0.1 if "a" in t else 0.3] for t in texts}  # one slow round

    monkeypatch.setattr(search_quality.c, "measure_rounds", rounds)
    rows = [
        {"hardcore": {"arch": "s1:a"}, "random": {"arch": "s1:b"}},
        {"hardcore": {"arch": "s1:a"}, "mobilenetv2": {"arch": "s2:c"}},
    ]
    search_quality.measure_rows(None, rows, {"s1": "space 1", "s2": "space 2"}, 3)  # type: ignore[arg-type]
    assert calls == [("space 1", ["s1:a", "s1:b"], 3), ("space 2", ["s2:c"], 3)]
    assert rows[0]["hardcore"]["measured_ms"] == 0.1 and rows[0]["random"]["measured_ms"] == 0.3
    assert rows[1]["mobilenetv2"]["measured_rounds"] == 3
