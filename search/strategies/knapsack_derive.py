"""Deriving the final architecture under hard budgets: the most likely choices (Σ log p) within
every device's limit, by an exact multiple-choice knapsack, and above a floor of the budget by
a band knapsack where the most likely choices would throw the budget away."""

from __future__ import annotations

from search.mckp import solve_mckp_band, solve_mckp_multi
from search.strategies.base import Budget


def _knapsack_inputs(
    budgets: list[Budget], limits_ms: list[float]
) -> tuple[list[list[list[float]]], list[float]]:
    """Per layer and candidate the cost on every device, and each device's capacity (its limit
    less the cost model's constant)."""
    capacities = [
        limit - b.cost_model.constant_ms for b, limit in zip(budgets, limits_ms, strict=True)
    ]
    costs = [
        [list(per_device) for per_device in zip(*layer, strict=True)]
        for layer in zip(*(b.cost_model.layer_costs for b in budgets), strict=True)
    ]
    return costs, capacities


def most_likely_within(
    log_probs: list[list[float]], budgets: list[Budget], limits_ms: list[float]
) -> list[int]:
    """The choices maximising Σ log p subject to every device's predicted latency ≤ its limit:
    an exact multiple-choice knapsack, one cost per device."""
    costs, capacities = _knapsack_inputs(budgets, limits_ms)
    return list(solve_mckp_multi(log_probs, costs, capacities).choices)


def most_likely_above(
    log_probs: list[list[float]], budgets: list[Budget], limits_ms: list[float], floor_ms: float
) -> list[int]:
    """`most_likely_within`, and if that leaves the first device's predicted latency under
    `floor_ms`, the most likely choices between the floor and every limit (`solve_mckp_band`:
    within the limits exactly, its likelihood optimal up to a bin of 1/4096 of the capacity per
    layer); where the floor cannot be reached, the most expensive choices within the limits.

    A direct band solve, not a bisection on a Lagrange multiplier μ (values log p + μ·cost):
    each μ costs an exact knapsack solve, and μ reaches only the band's points on the convex
    hull."""
    costs, capacities = _knapsack_inputs(budgets, limits_ms)
    choices = list(solve_mckp_multi(log_probs, costs, capacities).choices)
    primary = budgets[0].cost_model
    if primary.cost(choices) >= floor_ms:
        return choices
    band = solve_mckp_band(log_probs, costs, capacities, floor_ms - primary.constant_ms)
    return choices if band is None else list(band.choices)
