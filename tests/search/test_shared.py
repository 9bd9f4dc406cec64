"""One supernet, many budgets: the latency sampler, the shared weight phase, each budget's
architecture phase with its guarantee, resume, and when a request uses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from lut.store import LutStore
from search.cost import build_cost_model
from search.request import SearchSettings, build_requests
from search.shared import (
    SHARED_DIR,
    LatencySampler,
    default_arch_steps,
    run_shared_search,
    shares_supernet,
)
from search.spaces.base import space_from_string
from search.strategies.projection import expected_cost

SPACE = "fbnet-tiny"


def _model(store: LutStore) -> Any:
    return build_cost_model(store, store.resolve_device("synthetic"), space_from_string(SPACE))


def _shares(store: LutStore, *shares: float) -> list[float]:
    """Budgets at these shares of the space's latency range, rounded to 4 digits."""
    model = _model(store)
    span = model.max_latency_ms - model.min_latency_ms
    return [round(model.min_latency_ms + s * span, 4) for s in shares]


def _document(budgets: list[float], strategy: str = "hardcore", **extra: Any) -> dict[str, Any]:
    return {
        "space": SPACE,
        "dataset": "mnist5k",
        "devices": ["synthetic"],
        "budgets": budgets,
        "strategy": strategy,
        "epochs": 2,
        "batch_size": 64,
        "child_epochs": 1,
        "seed": 3,
        **extra,
    }


def _run(store: LutStore, data: Any, out: Path, doc: dict[str, Any], **kwargs: Any) -> list:
    return run_shared_search(build_requests(doc, out), store, out, data=data, **kwargs)


def test_sampler_distribution_has_the_target_latency_and_the_most_entropy(
    store: LutStore,
) -> None:
    """p ∝ exp(−λ·cost) per layer with E[lat] on the target: the uniform distribution at its own
    expected latency, the cheapest path near the bottom and the dearest near the top."""
    model = _model(store)
    sampler = LatencySampler(model, model.min_latency_ms, model.max_latency_ms, seed=0)
    uniform = model.constant_ms + sum(sum(c) / len(c) for c in model.layer_costs)
    flat = sampler.distribution(uniform)
    for row, costs in zip(flat, model.layer_costs, strict=True):
        assert torch.allclose(row[: len(costs)], torch.full((len(costs),), 1 / len(costs)).double())
    span = model.max_latency_ms - model.min_latency_ms
    for share in (0.001, 0.2, 0.5, 0.8, 0.999):
        target = model.min_latency_ms + share * span
        probs = sampler.distribution(target)
        got = model.constant_ms + expected_cost(probs.log(), sampler.costs, 0.0)
        assert got == pytest.approx(target, rel=1e-6)
    cheapest = [costs.index(min(costs)) for costs in model.layer_costs]
    near_bottom = sampler.distribution(model.min_latency_ms + 1e-4 * span).argmax(1).tolist()
    assert near_bottom == cheapest


def test_sampler_targets_cover_each_epochs_strata_once(store: LutStore) -> None:
    model = _model(store)
    low, high = (
        model.min_latency_ms,
        model.min_latency_ms + 0.5 * (model.max_latency_ms - model.min_latency_ms),
    )
    sampler = LatencySampler(model, low, high, seed=1)
    steps = 16
    targets = [sampler.target_ms(0, i, steps) for i in range(steps)]
    strata = sorted(int((t - low) / (high - low) * steps) for t in targets)
    assert strata == list(range(steps))
    assert targets != sorted(targets)  # a seeded order, not cheapest first
    assert [sampler.target_ms(1, i, steps) for i in range(steps)] != targets
    again = LatencySampler(model, low, high, seed=1)
    assert [again.path(0, i, steps) for i in range(steps)] == [
        sampler.path(0, i, steps) for i in range(steps)
    ]
    latencies = [model.cost(sampler.path(0, i, steps)) for i in range(steps)]
    assert min(latencies) < low + 0.2 * (high - low) and max(latencies) > low + 0.7 * (high - low)
    with pytest.raises(ValueError, match="outside the space"):
        LatencySampler(model, low, model.max_latency_ms * 2, seed=0)


def test_default_arch_steps_share_twice_a_single_searchs_among_the_budgets() -> None:
    settings = SearchSettings("hardcore", epochs=3)  # warm-up 1: 2 epochs of architecture steps
    assert default_arch_steps(settings, 24, 5) == 20  # 2 × 48 / 5, rounded up
    assert default_arch_steps(settings, 24, 2) == 48  # as many as a single search each
    assert default_arch_steps(SearchSettings("fbnet", epochs=1), 4, 9) == 1


def test_which_requests_share_a_supernet() -> None:
    def shares(budgets: list[float], **extra: Any) -> bool:
        doc = _document(budgets, **extra)
        return shares_supernet(doc, build_requests(doc, Path("out")))

    assert shares([1.0, 2.0]) and shares([1.0, 2.0], strategy="proxyless")
    assert not shares([1.0])
    assert not shares([1.0, 2.0], shared_supernet=False)
    assert not shares([1.0, 2.0], strategy="random")  # a baseline has no supernet


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["hardcore", "fbnet", "proxyless"])
def test_every_budget_searched_on_one_supernet(
    strategy: str, store: LutStore, small_data: Any, tmp_path: Path
) -> None:
    budgets = _shares(store, 0.15, 0.4, 0.7)
    events: list[dict] = []
    results = _run(
        store, small_data, tmp_path, _document(budgets, strategy), on_event=events.append
    )
    steps = 2 * 4  # epochs × steps per epoch (256 images, batch 64)
    arch_steps = default_arch_steps(SearchSettings(strategy, epochs=2), 4, 3)
    weights = json.loads((tmp_path / SHARED_DIR / "weights.json").read_text())
    assert weights["steps"] == steps
    assert weights["latency_range_ms"] == [_model(store).min_latency_ms, budgets[-1]]
    phases = [e.get("phase") for e in events if e["type"] == "search"]
    assert phases.index("architecture") > max(i for i, p in enumerate(phases) if p == "weights")
    for (budget, run_dir, metrics), expected in zip(results, budgets, strict=True):
        assert budget == expected and run_dir == tmp_path / f"budget-{expected:g}"
        for name in ("arch.json", "child.pt", "metrics.json", "history.jsonl"):
            assert (run_dir / name).exists()
        history = (run_dir / "history.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in history] == list(range(arch_steps))
        predicted = metrics["predicted_latency_ms"]["synthetic"]
        assert predicted <= budget  # the hard knapsack derive (soft penalties: budget derive)
        assert predicted >= 0.9 * budget  # and the floor
        shared = metrics["shared_supernet"]
        assert (shared["weight_steps"], shared["arch_steps"]) == (steps, arch_steps)
        assert metrics["search_wall_s"] > 0 and metrics["train_wall_s"] > 0
    children = [e["budget_ms"] for e in events if e["type"] == "done"]
    assert children == budgets


@pytest.mark.slow
def test_each_budget_starts_from_the_same_shared_weights(
    store: LutStore, small_data: Any, tmp_path: Path
) -> None:
    """The weights are frozen in, and reloaded before, every budget's phase: the order of the
    budgets changes no result."""
    budgets = _shares(store, 0.2, 0.6)
    forward = _run(store, small_data, tmp_path / "a", _document(budgets))
    backward = _run(store, small_data, tmp_path / "b", _document(budgets[::-1]))
    assert {b: m["arch"] for b, _, m in forward} == {b: m["arch"] for b, _, m in backward}
    for budget in budgets:
        name = f"budget-{budget:g}/history.jsonl"
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


class Interrupt(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["weights", "architecture", "training"])
def test_an_interrupted_shared_search_resumes_where_it_stopped(
    phase: str, store: LutStore, small_data: Any, tmp_path: Path
) -> None:
    budgets = _shares(store, 0.2, 0.6)
    doc = _document(budgets, "fbnet", checkpoint_every=2)
    whole = _run(store, small_data, tmp_path / "whole", doc)

    def stop(event: dict) -> None:
        if phase == "training" and event["type"] == "train" and event["budget_ms"] == budgets[1]:
            raise Interrupt
        if event["type"] == "search" and event.get("phase") == phase and event["step"] >= 5:
            raise Interrupt

    cut = tmp_path / "cut"
    with pytest.raises(Interrupt):
        _run(store, small_data, cut, _document(budgets, "fbnet", checkpoint_every=2), on_event=stop)
    events: list[dict] = []
    resumed = _run(store, small_data, cut, doc, on_event=events.append)
    assert [m["arch"] for _, _, m in resumed] == [m["arch"] for _, _, m in whole]
    for budget in budgets:
        name = f"budget-{budget:g}/history.jsonl"
        assert (cut / name).read_text() == (tmp_path / "whole" / name).read_text()
    resumes = [e for e in events if e["type"] == "resumed"]
    searched = [e for e in events if e["type"] == "search"]
    if phase == "weights":
        assert resumes == [{"type": "resumed", "phase": "weights", "step": 6}]
    elif phase == "architecture":
        assert all(e.get("phase") == "architecture" for e in searched)
        assert resumes and resumes[0]["phase"] == "architecture"
    else:  # the first budget's child is kept, the second's trained again; no search steps
        assert not searched
        assert [e["budget_ms"] for e in events if e["type"] == "done"] == [budgets[1]]


def test_a_folder_of_another_request_is_refused(
    store: LutStore, small_data: Any, tmp_path: Path
) -> None:
    budgets = _shares(store, 0.2, 0.6)
    doc = _document(budgets, epochs=1, arch_steps=1)
    _run(store, small_data, tmp_path, doc)
    with pytest.raises(ValueError, match="another request"):
        _run(store, small_data, tmp_path, {**doc, "seed": 4})
    with pytest.raises(ValueError, match="another request"):
        _run(store, small_data, tmp_path, {**doc, "options": {"margin": 0.1}})


def test_an_infeasible_budget_is_refused_before_any_work(
    store: LutStore, small_data: Any, tmp_path: Path
) -> None:
    from search.mckp import Infeasible

    budgets = [_model(store).min_latency_ms * 0.5, *_shares(store, 0.5)]
    with pytest.raises(Infeasible, match="smallest achievable"):
        _run(store, small_data, tmp_path, _document(budgets))
    assert not (tmp_path / SHARED_DIR).exists()
