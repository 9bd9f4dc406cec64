"""The search engine: exact knapsack, LUT cost model, strategies, hard budgets, resume."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lut.measurement import Measurement
from lut.predictor import FixedCosts, predict
from lut.store import LutStore
from search.cost import build_cost_model
from search.mckp import (
    Infeasible,
    JointlyInfeasible,
    solve_mckp,
    solve_mckp_band,
    solve_mckp_multi,
)
from search.request import SearchRequest, SearchSettings
from search.run import run_search
from search.spaces.base import space_from_string
from search.spaces.complexity import macs
from search.strategies.base import strategy_names
from search.strategies.projection import expected_cost, project_onto_bands, stack_rows

SPACE = "fbnet-tiny"


def test_mckp_matches_brute_force() -> None:
    rng = random.Random(0)
    for _ in range(100):
        sizes = [rng.randint(1, 4) for _ in range(rng.randint(1, 5))]
        values = [[rng.uniform(-3, 0) for _ in range(k)] for k in sizes]
        costs = [[rng.uniform(0, 1) for _ in range(k)] for k in sizes]
        budget = rng.uniform(0, len(sizes))
        feasible = [
            (sum(values[g][i] for g, i in enumerate(c)), c)
            for c in itertools.product(*(range(k) for k in sizes))
            if sum(costs[g][i] for g, i in enumerate(c)) <= budget
        ]
        if not feasible:
            with pytest.raises(Infeasible, match="smallest achievable"):
                solve_mckp(values, costs, budget)
            continue
        best = solve_mckp(values, costs, budget)
        assert best.value == pytest.approx(max(feasible)[0])
        assert best.cost <= budget + 1e-9


def test_multi_budget_mckp_matches_brute_force() -> None:
    rng = random.Random(1)
    for _ in range(100):
        sizes = [rng.randint(1, 4) for _ in range(rng.randint(1, 5))]
        dims = rng.randint(1, 3)
        values = [[rng.uniform(-3, 0) for _ in range(k)] for k in sizes]
        costs = [[[rng.uniform(0, 1) for _ in range(dims)] for _ in range(k)] for k in sizes]
        budgets = [rng.uniform(0, len(sizes)) for _ in range(dims)]
        feasible = [
            sum(values[g][i] for g, i in enumerate(c))
            for c in itertools.product(*(range(k) for k in sizes))
            if all(sum(costs[g][i][d] for g, i in enumerate(c)) <= budgets[d] for d in range(dims))
        ]
        if not feasible:
            with pytest.raises((Infeasible, JointlyInfeasible)):
                solve_mckp_multi(values, costs, budgets)
            continue
        assert solve_mckp_multi(values, costs, budgets).value == pytest.approx(max(feasible))


def test_band_mckp_is_optimal_up_to_its_bins_and_exact_on_its_bounds() -> None:
    """Against brute force: the result lies in [floor, budget] exactly, and its value is at least
    the best of the band narrowed by groups × bin width on each side (the solver's guarantee);
    with no selection reaching the floor, one within that width of the most expensive fit."""
    rng = random.Random(2)
    checked = 0
    for _ in range(150):
        sizes = [rng.randint(1, 5) for _ in range(rng.randint(1, 5))]
        values = [[rng.uniform(-3, 0) for _ in range(k)] for k in sizes]
        costs = [[[rng.uniform(0, 1)] for _ in range(k)] for k in sizes]
        budget = rng.uniform(0, len(sizes))
        floor = rng.uniform(0, budget)
        bins = rng.choice([16, 256, 4096])
        selections = [
            (
                sum(values[g][i] for g, i in enumerate(c)),
                sum(costs[g][i][0] for g, i in enumerate(c)),
            )
            for c in itertools.product(*(range(k) for k in sizes))
        ]
        fitting = [(v, c) for v, c in selections if c <= budget]
        result = solve_mckp_band(values, costs, [budget], floor, bins=bins)
        if not fitting:
            assert result is None
            continue
        assert result is not None and result.cost <= budget + 1e-9
        slack = len(sizes) * budget / bins
        inner = [v for v, c in fitting if floor + slack <= c <= budget - slack]
        most = max(c for _, c in fitting)
        if most >= floor + slack:
            assert result.cost >= floor - 1e-9
            if inner:
                assert result.value >= max(inner) - 1e-9
                checked += 1
        else:  # the floor is out of reach, or within a bin of it
            assert result.cost >= min(floor, most - slack) - 1e-9
    assert checked > 50  # the optimality bound was tested, not only the bounds


def test_band_mckp_keeps_every_budget_on_two_dimensions() -> None:
    rng = random.Random(3)
    for _ in range(60):
        sizes = [rng.randint(1, 4) for _ in range(rng.randint(1, 4))]
        values = [[rng.uniform(-3, 0) for _ in range(k)] for k in sizes]
        costs = [[[rng.uniform(0, 1), rng.uniform(0, 1)] for _ in range(k)] for k in sizes]
        budgets = [rng.uniform(0, len(sizes)) for _ in range(2)]
        result = solve_mckp_band(values, costs, budgets, rng.uniform(0, budgets[0]))
        if result is None:
            continue
        for d in range(2):
            assert sum(costs[g][i][d] for g, i in enumerate(result.choices)) <= budgets[d] + 1e-9


def test_projection_lands_every_layer_on_the_band() -> None:
    """Layers of different widths (the padding must carry no probability); an expected cost
    above the band is brought to its top, one below to its bottom, one inside left alone; an
    upper bound below every distribution is refused."""
    gen = torch.Generator().manual_seed(0)
    widths = [1, 3, 9, 5]
    costs = [torch.rand(k, generator=gen) for k in widths]
    table = stack_rows(costs, pad=0.0)
    lo = sum(float(c.min()) for c in costs)
    hi = sum(float(c.max()) for c in costs)
    for share_low, share_high in [(0.1, 0.2), (0.8, 0.9), (0.0, 1.0)]:
        low, high = lo + share_low * (hi - lo), lo + share_high * (hi - lo)
        alphas = [torch.randn(k, generator=gen) for k in widths]
        before = [a.clone() for a in alphas]
        start = sum(
            float((torch.softmax(a, 0) * c).sum()) for a, c in zip(alphas, costs, strict=True)
        )
        project_onto_bands(alphas, [table], [low], [high])
        after = sum(
            float((torch.softmax(a, 0) * c).sum()) for a, c in zip(alphas, costs, strict=True)
        )
        assert expected_cost(stack_rows(alphas, pad=float("-inf")), table, 0.0) == pytest.approx(
            after, rel=1e-5
        )
        if start > high:
            assert after == pytest.approx(high, rel=1e-4)
        elif start < low:
            assert after == pytest.approx(low, rel=1e-4)
        else:
            assert all(torch.equal(a, b) for a, b in zip(alphas, before, strict=True))
    with pytest.raises(ValueError, match="cannot be met"):
        project_onto_bands([torch.zeros(k) for k in widths], [table], [0.0], [0.5 * lo])


def test_cost_model_equals_the_predictor(store: LutStore) -> None:
    device = store.resolve_device("synthetic")
    space = space_from_string(SPACE)
    model = build_cost_model(store, device, space)
    for arch in space.iter_random(seed=4, count=10):
        index = [
            slot.candidates.index(t) for slot, t in zip(space.layers, arch.choices, strict=True)
        ]
        specs = space.decode(arch)
        expected = predict(specs, store.lookup(device, specs), device.fixed_costs).latency_ms
        assert model.cost(index) == pytest.approx(expected)
    probs = [torch.full((len(s.candidates),), 1 / len(s.candidates)) for s in space.layers]
    uniform = model.constant_ms + sum(sum(c) / len(c) for c in model.layer_costs)
    assert float(model.expected_cost(probs)) == pytest.approx(uniform)


def test_every_strategy_is_registered() -> None:
    assert {"fbnet", "proxyless", "hardcore", "random", "evolution"} <= set(strategy_names())


DROP_IN = """
from search.strategies.base import register_strategy
from search.strategies.random_search import RandomSearch


@register_strategy("{name}")
class DroppedIn(RandomSearch):
    pass
"""


def test_a_strategy_file_dropped_into_the_package_is_registered() -> None:
    """No other edit: the package imports every module in it. Checked in a fresh interpreter, so
    this process's registry stays as it was."""
    import subprocess
    import sys
    import uuid

    import search.strategies

    name = f"dropin_{uuid.uuid4().hex[:8]}"
    module = Path(search.strategies.__path__[0]) / f"{name}.py"
    module.write_text(DROP_IN.format(name=name))
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from search.strategies.base import strategy_names, get_strategy; "
                f"print(get_strategy({name!r}).__name__, {name!r} in strategy_names())",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        module.unlink()
    assert done.stdout.split() == ["DroppedIn", "True"], done.stderr[-2000:]


def test_a_baseline_is_not_a_supernet_strategy() -> None:
    from search.strategies.base import get_search_strategy

    with pytest.raises(ValueError, match="stand-alone"):
        get_search_strategy("random")
    with pytest.raises(ValueError, match="valid: evolution, fbnet"):
        get_search_strategy("nope")


def _request(strategy: str, budget: float | None, **settings: object) -> SearchRequest:
    base = {"strategy": strategy, "epochs": 2, "warmup_epochs": 1, "batch_size": 64, "seed": 3}
    return SearchRequest(
        space=SPACE,
        dataset="mnist5k",
        devices=("synthetic",),
        budgets_ms=(budget,),
        settings=SearchSettings(**{**base, **settings}),  # type: ignore[arg-type]
        child_epochs=1,
        trials=3,
    )


def _budget(store: LutStore, share: float) -> float:
    model = build_cost_model(store, store.resolve_device("synthetic"), space_from_string(SPACE))
    return model.min_latency_ms + share * (model.max_latency_ms - model.min_latency_ms)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", strategy_names())
def test_strategy_produces_a_trained_architecture(
    strategy: str, store: LutStore, small_data: object, tmp_path: Path
) -> None:
    budget = _budget(store, 0.4)
    metrics = run_search(_request(strategy, budget), store, tmp_path, data=small_data)
    for name in ("arch.json", "child.pt", "metrics.json"):
        assert (tmp_path / name).exists()
    _, arch = space_from_string(SPACE), metrics["arch"]
    assert arch.startswith("fbnet-tiny@")
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    if strategy in ("hardcore", "random", "evolution"):  # hard budgets
        assert metrics["predicted_latency_ms"]["synthetic"] <= budget


@pytest.mark.slow
@pytest.mark.parametrize("share", [0.05, 0.3, 0.7])
def test_hardcore_meets_and_uses_the_budget(
    share: float, store: LutStore, small_data: object, tmp_path: Path
) -> None:
    budget = _budget(store, share)
    metrics = run_search(_request("hardcore", budget), store, tmp_path, data=small_data)
    predicted = metrics["predicted_latency_ms"]["synthetic"]
    assert predicted <= budget
    assert predicted >= 0.9 * budget or share == 0.05  # near the minimum little room is left


def test_infeasible_budget_names_the_smallest_latency(
    store: LutStore, small_data: object, tmp_path: Path
) -> None:
    minimum = _budget(store, 0.0)
    with pytest.raises(Infeasible, match=f"smallest achievable is {minimum:.4g}"):
        run_search(_request("hardcore", minimum * 0.5), store, tmp_path, data=small_data)
    assert not (tmp_path / "checkpoint.pt").exists()


@pytest.mark.slow
def test_hardcore_meets_budgets_on_two_devices(
    store: LutStore, small_data: object, tmp_path: Path
) -> None:
    # A second device on which wide expansions are relatively dearer than on the first.
    other = store.register_device("other", {"backend": "synthetic-2", "threads": 1})
    store.set_fixed_costs(other, FixedCosts(0.002, 0.0, 0.0))
    specs = [s for s in space_from_string(SPACE).distinct_opspecs() if not s.is_identity]
    store.add_measurements(
        other,
        [
            (s, Measurement.from_samples([0.002 + 1e-6 * macs(s) * s.expansion] * 7, warmup=0))
            for s in specs
        ],
    )
    models = {
        name: build_cost_model(store, store.resolve_device(name), space_from_string(SPACE))
        for name in ("synthetic", "other")
    }
    budgets = {
        n: m.min_latency_ms + 0.35 * (m.max_latency_ms - m.min_latency_ms)
        for n, m in models.items()
    }
    request = replace(
        _request("hardcore", budgets["synthetic"]),
        devices=("synthetic", "other"),
        budgets_ms=(budgets["synthetic"], budgets["other"]),
    )
    metrics = run_search(request, store, tmp_path, data=small_data)
    for name, budget in budgets.items():
        assert metrics["predicted_latency_ms"][name] <= budget


class Interrupt(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["hardcore", "fbnet"])
def test_resumed_search_ends_like_the_uninterrupted_one(
    strategy: str, store: LutStore, small_data: object, tmp_path: Path
) -> None:
    budget = _budget(store, 0.5)
    request = _request(strategy, budget, checkpoint_every=2, epochs=3)
    whole = run_search(request, store, tmp_path / "whole", data=small_data)

    def stop_at_step_7(event: dict) -> None:
        if event.get("type") == "search" and event["step"] >= 7:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_search(request, store, tmp_path / "cut", data=small_data, on_event=stop_at_step_7)
    events: list[dict] = []
    resumed = run_search(request, store, tmp_path / "cut", data=small_data, on_event=events.append)
    assert {"type": "resumed", "step": 6} in events
    assert resumed["arch"] == whole["arch"]
    whole_history = (tmp_path / "whole" / "history.jsonl").read_text()
    assert (tmp_path / "cut" / "history.jsonl").read_text() == whole_history


def _strategy(store: LutStore, name: str, budget: float, error_loo: float | None, **options):  # type: ignore[no-untyped-def]
    from search.strategies.base import Budget, get_search_strategy
    from search.supernet import Supernet

    space = space_from_string(SPACE)
    model = build_cost_model(store, store.resolve_device("synthetic"), space)
    model = replace(model, error_loo=error_loo)
    torch.manual_seed(0)
    return get_search_strategy(name)(Supernet(space), [Budget(model, budget)], **options), model


def test_hardcore_auto_margin_is_twice_the_calibrations_loo_error(store: LutStore) -> None:
    budget = _budget(store, 0.5)
    strategy, model = _strategy(store, "hardcore", budget, error_loo=0.04)
    predicted = model.cost(strategy.derive())
    assert strategy.report()["margin"] == {"synthetic": pytest.approx(0.08)}
    assert 0.9 * budget <= predicted <= 0.92 * budget
    plain, _ = _strategy(store, "hardcore", budget, error_loo=0.04, margin=0)
    assert 0.92 * budget < model.cost(plain.derive()) <= budget


def test_hardcore_margin_without_calibration_is_zero_and_never_below_the_minimum(
    store: LutStore,
) -> None:
    uncalibrated, _ = _strategy(store, "hardcore", _budget(store, 0.5), error_loo=None)
    assert uncalibrated.report()["margin"] == {"synthetic": 0.0}
    minimum = _budget(store, 0.0)
    tight, model = _strategy(store, "hardcore", minimum * 1.01, error_loo=0.1)
    assert tight.report()["limit_ms"]["synthetic"] == pytest.approx(minimum)
    assert model.cost(tight.derive()) == pytest.approx(minimum)


@pytest.mark.parametrize("margin", ["big", 0.7, -0.1, True])
def test_hardcore_refuses_a_bad_margin(store: LutStore, margin: object) -> None:
    with pytest.raises(ValueError, match="margin"):
        _strategy(store, "hardcore", _budget(store, 0.5), error_loo=None, margin=margin)


def test_fbnet_temperature_anneals_over_the_searchs_own_length() -> None:
    from search.strategies.relaxation import annealed_temperature

    for epochs in (3, 10, 90):
        assert annealed_temperature(5.0, 0.5, None, 0, epochs) == pytest.approx(5.0)
        assert annealed_temperature(5.0, 0.5, None, epochs - 1, epochs) == pytest.approx(0.5)
    assert annealed_temperature(5.0, 0.5, 0.956, 2, 3) == pytest.approx(5.0 * 0.956**2)


def _penalties(
    store: LutStore, small_data: object, name: str, scales: tuple[float, ...], **options: object
) -> dict[float, tuple[float, bool]]:
    """Per budget scale (× the expected latency of the uniform start): the architecture loss's
    latency penalty, and whether the loss is the task loss times it."""
    probe, _ = _strategy(store, name, 1.0, error_loo=None)
    expected = probe.expected_latencies()["synthetic"].item()
    images, labels = small_data.train.tensors  # type: ignore[attr-defined]
    out = {}
    for scale in scales:
        strategy, _ = _strategy(store, name, expected * scale, error_loo=None, **options)
        _, details = strategy.architecture_loss(
            images[:16], labels[:16], torch.Generator().manual_seed(0)
        )
        multiplied = details.loss == pytest.approx(details.task_loss * details.penalty)
        out[scale] = (details.penalty, multiplied)
    return out


def test_fbnet_latency_factor_is_lowest_at_the_budget(store: LutStore, small_data: object) -> None:
    factors = _penalties(store, small_data, "fbnet", (0.5, 1.0, 2.0))
    assert all(multiplied for _, multiplied in factors.values())
    assert factors[1.0][0] == pytest.approx(1.0)
    assert factors[0.5][0] == pytest.approx(2.0**0.6)  # over the budget: β
    assert factors[2.0][0] == pytest.approx(2.0**0.6)  # under it: beta_below = -β by default
    flat = _penalties(store, small_data, "fbnet", (2.0,), beta_below=0.0)
    assert flat[2.0][0] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["fbnet", "proxyless"])
@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_mirror_step_shifts_each_choice_by_its_cost(
    store: LutStore, scale: float, name: str
) -> None:
    probe, _ = _strategy(store, name, 1.0, error_loo=None)
    expected = probe.expected_latencies()["synthetic"].item()
    strategy, model = _strategy(store, name, expected * scale, error_loo=None)
    before = [a.detach().clone() for a in strategy.supernet.alphas]
    strategy.after_architecture_step()
    exponent = 0.6 if scale < 1 else -0.6  # over the budget β, under it beta_below
    for alpha, start, costs in zip(
        strategy.supernet.alphas, before, model.layer_costs, strict=True
    ):
        want = start - 0.3 * exponent / expected * torch.tensor(costs, dtype=start.dtype)
        assert torch.allclose(alpha.detach(), want)
    cheapest = [costs.index(min(costs)) for costs in model.layer_costs]
    moved = [int(torch.argmax(a.detach())) for a in strategy.supernet.alphas]
    assert (moved == cheapest) == (scale < 1)


@pytest.mark.parametrize("name", ["fbnet", "proxyless"])
def test_adam_latency_step_is_the_papers_product_loss(
    store: LutStore, small_data: object, name: str
) -> None:
    budget = _budget(store, 0.5)
    strategy, _ = _strategy(store, name, budget, error_loo=None, latency_step="adam")
    before = [a.detach().clone() for a in strategy.supernet.alphas]
    strategy.after_architecture_step()  # no step of its own: the latency is in Adam's loss
    assert all(
        torch.equal(a.detach(), b) for a, b in zip(strategy.supernet.alphas, before, strict=True)
    )
    images, labels = small_data.train.tensors  # type: ignore[attr-defined]
    loss, details = strategy.architecture_loss(
        images[:16], labels[:16], torch.Generator().manual_seed(0)
    )
    assert loss.item() == pytest.approx(details.task_loss * details.penalty)
    mirror, _ = _strategy(store, name, budget, error_loo=None)  # the default: Adam sees CE only
    loss, details = mirror.architecture_loss(
        images[:16], labels[:16], torch.Generator().manual_seed(0)
    )
    assert loss.item() == pytest.approx(details.task_loss)


def test_proxyless_additive_mirror_step_is_the_penaltys_gradient(store: LutStore) -> None:
    """With `penalty=add` the mirror step follows λ·E/B's gradient in p, λ·cost/B: it pushes
    every choice down by its cost on either side of the budget (the paper's penalty is
    one-sided)."""
    for scale in (0.5, 2.0):
        budget = _budget(store, 0.5) * scale
        strategy, model = _strategy(store, "proxyless", budget, error_loo=None, penalty="add")
        before = [a.detach().clone() for a in strategy.supernet.alphas]
        strategy.after_architecture_step()
        for alpha, start, costs in zip(
            strategy.supernet.alphas, before, model.layer_costs, strict=True
        ):
            want = start - 0.3 * 0.1 / budget * torch.tensor(costs, dtype=start.dtype)
            assert torch.allclose(alpha.detach(), want)


@pytest.mark.parametrize("name", ["fbnet", "proxyless"])
@pytest.mark.parametrize(
    "options", [{"latency_step": "sgd"}, {"latency_lr": 0}, {"latency_lr": "fast"}]
)
def test_refuses_bad_latency_step_options(store: LutStore, options: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} latency_"):
        _strategy(store, name, _budget(store, 0.5), error_loo=None, **options)


def test_fbnet_derives_the_most_likely_architecture_within_the_budget(store: LutStore) -> None:
    budget = _budget(store, 0.3)
    strategy, model = _strategy(store, "fbnet", budget, error_loo=None)
    with torch.no_grad():
        for alpha, costs in zip(strategy.supernet.alphas, model.layer_costs, strict=True):
            alpha.copy_(torch.tensor(costs) / max(costs))  # the dearest choice most likely
    argmax = [costs.index(max(costs)) for costs in model.layer_costs]
    argmax_strategy, _ = _strategy(store, "fbnet", budget, error_loo=None, derive="argmax")
    argmax_strategy.supernet.load_state_dict(strategy.supernet.state_dict())
    assert argmax_strategy.derive() == argmax and model.cost(argmax) > budget
    within = strategy.derive()
    assert model.cost(within) <= budget
    with pytest.raises(ValueError, match="derive"):
        _strategy(store, "fbnet", budget, error_loo=None, derive="best")


@pytest.mark.parametrize("name", ["hardcore", "fbnet"])
@pytest.mark.parametrize("relaxation", ["soft", "hard"])
def test_relaxation_trains_every_candidate_or_one_path(
    store: LutStore, name: str, relaxation: str
) -> None:
    strategy, _ = _strategy(store, name, _budget(store, 0.5), error_loo=None, relaxation=relaxation)
    from search.supernet import MixedOp

    supernet = strategy.supernet
    images = torch.randn(4, *supernet.space.input_shape[1:])
    labels = torch.randint(0, 10, (4,))
    loss, _ = strategy.architecture_loss(images, labels, torch.Generator().manual_seed(0))
    loss.backward()
    first = next(m for m in supernet.modules() if isinstance(m, MixedOp))
    trained = [
        any(p.grad is not None and p.grad.abs().sum() > 0 for p in op.parameters())
        for op in first.candidates
        if any(True for _ in op.parameters())
    ]
    assert sum(trained) == (len(trained) if relaxation == "soft" else 1)
    assert all(a.grad is not None and (a.grad != 0).all() for a in supernet.alphas)


@pytest.mark.parametrize("name", ["hardcore", "fbnet"])
def test_refuses_an_unknown_relaxation(store: LutStore, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} relaxation"):
        _strategy(store, name, _budget(store, 0.5), error_loo=None, relaxation="dense")


@pytest.mark.parametrize("name", ["fbnet", "proxyless"])
@pytest.mark.parametrize("share", [0.9, 0.0])
def test_soft_penalties_derive_within_the_budget_and_above_its_floor(
    store: LutStore, share: float, name: str
) -> None:
    budget = _budget(store, 0.5)
    strategy, model = _strategy(store, name, budget, error_loo=None, min_budget_share=share)
    with torch.no_grad():  # a search that ended leaning towards every layer's cheapest choice
        for alpha, costs in zip(strategy.supernet.alphas, model.layer_costs, strict=True):
            alpha.copy_(-10.0 * torch.tensor(costs) / max(costs))
    predicted = model.cost(strategy.derive())
    assert predicted <= budget
    if share:
        assert predicted >= share * budget
    else:  # no floor: the most likely architecture, far under the budget
        assert predicted < 0.9 * budget


@pytest.mark.parametrize("name", ["fbnet", "proxyless"])
@pytest.mark.parametrize("share", [-0.1, 1.5, "most", True])
def test_soft_penalties_refuse_a_bad_budget_share(
    store: LutStore, share: object, name: str
) -> None:
    with pytest.raises(ValueError, match=f"{name} min_budget_share"):
        _strategy(store, name, _budget(store, 0.5), error_loo=None, min_budget_share=share)


@pytest.mark.parametrize("options", [{"penalty": "pow"}, {"derive": "best"}])
def test_proxyless_refuses_bad_options_before_any_step(store: LutStore, options: dict) -> None:
    with pytest.raises(ValueError, match="proxyless"):
        _strategy(store, "proxyless", _budget(store, 0.5), error_loo=None, **options)


def test_proxyless_penalty_is_lowest_at_the_budget(store: LutStore, small_data: object) -> None:
    penalties = _penalties(store, small_data, "proxyless", (0.5, 1.0, 2.0))
    assert all(multiplied for _, multiplied in penalties.values())
    assert penalties[1.0][0] == pytest.approx(1.0)
    assert penalties[0.5][0] == pytest.approx(penalties[2.0][0]) == pytest.approx(2.0**0.6)
    additive = _penalties(store, small_data, "proxyless", (2.0,), penalty="add")
    assert additive[2.0][0] == pytest.approx(0.1 * 0.5)  # the paper's λ · E/B, one-sided


def test_warmup_default_adapts_to_the_epochs() -> None:
    """Left unset, the warm-up is 1 epoch, or 0 with a single epoch: a default never refuses
    a request; a warm-up the caller chose that does not fit is refused, naming the default."""
    assert SearchSettings("fbnet", epochs=1).warmup_epochs == 0
    assert SearchSettings("fbnet", epochs=5).warmup_epochs == 1
    assert SearchSettings("fbnet", epochs=5, warmup_epochs=3).warmup == 3
    message = r"warmup_epochs \(2\) must be >= 0 and fewer than epochs \(2\); left unset it is 1"
    with pytest.raises(ValueError, match=message):
        SearchSettings("fbnet", epochs=2, warmup_epochs=2)
