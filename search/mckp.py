"""An exact solver of the multiple-choice knapsack: pick one item per group, maximise the summed
value subject to the summed cost ≤ budget.

Dynamic programming over Pareto frontiers: after each group only (cost, value) pairs that no other
pair beats on both counts survive, and pairs that cannot fit even with the cheapest remaining
choices are dropped. Exact (no discretisation of costs); fast for NAS-sized problems (tens of
groups, around ten items each).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class Infeasible(ValueError):
    """No selection fits the budget; `min_cost` is the smallest achievable total."""

    def __init__(self, budget: float, min_cost: float, unit: str = "ms", where: str = "") -> None:
        self.budget, self.min_cost = budget, min_cost
        place = f" on {where}" if where else ""
        super().__init__(
            f"budget {budget:.4g} {unit}{place} is infeasible: the smallest achievable is "
            f"{min_cost:.4g} {unit}"
        )


class JointlyInfeasible(ValueError):
    """Each budget can be met alone, but no selection meets all of them at once."""

    def __init__(self, budgets: Sequence[float]) -> None:
        listed = ", ".join(f"{b:.4g}" for b in budgets)
        super().__init__(f"no architecture meets every budget at once ({listed} ms)")


@dataclass(frozen=True)
class Selection:
    choices: tuple[int, ...]
    value: float
    cost: float


def solve_mckp(
    values: Sequence[Sequence[float]],
    costs: Sequence[Sequence[float]],
    budget: float,
    *,
    tolerance: float = 1e-9,
) -> Selection:
    """Maximise Σ values[g][choice_g] subject to Σ costs[g][choice_g] <= budget."""
    if len(values) != len(costs) or not values:
        raise ValueError("values and costs need the same, non-zero number of groups")
    vals = [np.asarray(v, dtype=float) for v in values]
    csts = [np.asarray(c, dtype=float) for c in costs]
    if any(v.shape != c.shape or v.size == 0 for v, c in zip(vals, csts, strict=True)):
        raise ValueError("every group needs at least one item, with as many values as costs")
    min_rest = np.concatenate([np.cumsum([c.min() for c in csts][::-1])[::-1], [0.0]])
    if min_rest[0] > budget + tolerance:
        raise Infeasible(budget, float(min_rest[0]))
    frontier_cost, frontier_value = np.zeros(1), np.zeros(1)
    parents: list[tuple[np.ndarray, np.ndarray]] = []
    for g, (v, c) in enumerate(zip(vals, csts, strict=True)):
        cost = (frontier_cost[:, None] + c[None, :]).ravel()
        value = (frontier_value[:, None] + v[None, :]).ravel()
        parent = np.repeat(np.arange(frontier_cost.size), c.size)
        choice = np.tile(np.arange(c.size), frontier_cost.size)
        fits = cost + min_rest[g + 1] <= budget + tolerance
        cost, value, parent, choice = cost[fits], value[fits], parent[fits], choice[fits]
        order = np.lexsort((-value, cost))  # by cost, then best value first
        cost, value, parent, choice = cost[order], value[order], parent[order], choice[order]
        best_before = np.concatenate([[-np.inf], np.maximum.accumulate(value)[:-1]])
        keep = value > best_before  # strictly better than every cheaper pair: Pareto-optimal
        frontier_cost, frontier_value = cost[keep], value[keep]
        parents.append((parent[keep], choice[keep]))
    best = int(np.argmax(frontier_value))
    picked = []
    index = best
    for parent, choice in reversed(parents):
        picked.append(int(choice[index]))
        index = int(parent[index])
    return Selection(
        tuple(reversed(picked)), float(frontier_value[best]), float(frontier_cost[best])
    )


MAX_FRONTIER = 200_000


def solve_mckp_multi(
    values: Sequence[Sequence[float]],
    costs: Sequence[Sequence[Sequence[float]]],
    budgets: Sequence[float],
    *,
    tolerance: float = 1e-9,
) -> Selection:
    """Like `solve_mckp` with a cost vector per item and one budget per dimension (several
    devices' latencies at once): every budget must hold. Exact; the frontier keeps the
    selections no other beats on value and on every cost. `Selection.cost` is the first
    dimension's."""
    if len(budgets) == 1:
        return solve_mckp(
            values, [[c[0] for c in g] for g in costs], budgets[0], tolerance=tolerance
        )
    vals = [np.asarray(v, dtype=float) for v in values]
    csts = [
        np.asarray(c, dtype=float).reshape(len(v), len(budgets))
        for v, c in zip(values, costs, strict=True)
    ]
    limit = np.asarray(budgets, dtype=float) + tolerance
    mins = np.array([c.min(axis=0) for c in csts])
    min_rest = np.vstack([np.cumsum(mins[::-1], axis=0)[::-1], np.zeros(len(budgets))])
    if np.any(min_rest[0] > limit):
        dim = int(np.argmax(min_rest[0] - limit))
        raise Infeasible(budgets[dim], float(min_rest[0][dim]), where=f"dimension {dim}")
    frontier_cost, frontier_value = np.zeros((1, len(budgets))), np.zeros(1)
    parents: list[tuple[np.ndarray, np.ndarray]] = []
    for g, (v, c) in enumerate(zip(vals, csts, strict=True)):
        cost = (frontier_cost[:, None, :] + c[None, :, :]).reshape(-1, len(budgets))
        value = (frontier_value[:, None] + v[None, :]).ravel()
        parent = np.repeat(np.arange(len(frontier_value)), len(v))
        choice = np.tile(np.arange(len(v)), len(frontier_value))
        fits = np.all(cost + min_rest[g + 1] <= limit, axis=1)
        cost, value, parent, choice = cost[fits], value[fits], parent[fits], choice[fits]
        keep = _pareto(cost, value)
        if keep.size == 0:
            raise JointlyInfeasible(budgets)
        if keep.size > MAX_FRONTIER:
            raise ValueError("too many Pareto-optimal selections for an exact multi-budget solve")
        frontier_cost, frontier_value = cost[keep], value[keep]
        parents.append((parent[keep], choice[keep]))
    best = int(np.argmax(frontier_value))
    picked, index = [], best
    for parent, choice in reversed(parents):
        picked.append(int(choice[index]))
        index = int(parent[index])
    return Selection(
        tuple(reversed(picked)), float(frontier_value[best]), float(frontier_cost[best][0])
    )


def _pareto(cost: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Indices of points that no other point matches or beats on value and every cost."""
    order = np.lexsort((*cost.T[::-1], -value))  # best value first, then cheapest
    kept: list[int] = []
    for i in order:
        if kept and np.any(np.all(cost[kept] <= cost[i], axis=1)):
            continue
        kept.append(int(i))
    return np.asarray(kept, dtype=int)


BAND_BINS = 4096  # cost bins of solve_mckp_band on the first dimension, across its budget


def solve_mckp_band(
    values: Sequence[Sequence[float]],
    costs: Sequence[Sequence[Sequence[float]]],
    budgets: Sequence[float],
    floor: float,
    *,
    bins: int = BAND_BINS,
    tolerance: float = 1e-9,
) -> Selection | None:
    """Maximise Σ values subject to every dimension's Σ cost ≤ its budget and the first
    dimension's Σ cost ≥ `floor`; where no selection reaches the floor, the one of largest first
    cost. None if no selection meets every budget (where the exact solvers raise).

    Dynamic programming over `bins` cost bins of the first dimension: per bin only the best
    value survives, while each selection's costs stay exact, so a returned selection meets every
    budget (and the floor, where it says so) exactly. Its value is at least the optimum of the
    band narrowed by groups × bin width on each side (budgets[0] / bins per group); on further
    dimensions a bin's survivor may cost more than the pair it displaced, so there it is a
    heuristic. About 30 ms on fbnet-tiny, where an exact solve of the values shifted towards
    cost (the Pareto frontier of cost against value then keeps nearly every pair) takes ~1 s."""
    dims = len(budgets)
    vals = [np.asarray(v, dtype=float) for v in values]
    csts = [
        np.asarray(c, dtype=float).reshape(len(v), dims) for v, c in zip(vals, costs, strict=True)
    ]
    limit = np.asarray(budgets, dtype=float) + tolerance
    mins = np.array([c.min(axis=0) for c in csts])
    min_rest = np.vstack([np.cumsum(mins[::-1], axis=0)[::-1], np.zeros(dims)])
    if np.any(min_rest[0] > limit):
        return None
    width = max(float(budgets[0]), tolerance) / bins
    state_cost, state_value = np.zeros((1, dims)), np.zeros(1)
    parents: list[tuple[np.ndarray, np.ndarray]] = []
    for g, (v, c) in enumerate(zip(vals, csts, strict=True)):
        cost = (state_cost[:, None, :] + c[None, :, :]).reshape(-1, dims)
        value = (state_value[:, None] + v[None, :]).ravel()
        parent = np.repeat(np.arange(len(state_value)), len(v))
        choice = np.tile(np.arange(len(v)), len(state_value))
        fits = np.all(cost + min_rest[g + 1] <= limit, axis=1)
        if not fits.any():
            return None
        cost, value, parent, choice = cost[fits], value[fits], parent[fits], choice[fits]
        cell = np.floor(cost[:, 0] / width).astype(np.int64)
        order = np.lexsort((-value, cell))  # by bin, best value first
        first = np.ones(order.size, dtype=bool)
        first[1:] = cell[order][1:] != cell[order][:-1]
        keep = order[first]
        state_cost, state_value = cost[keep], value[keep]
        parents.append((parent[keep], choice[keep]))
    reaches = state_cost[:, 0] >= floor - tolerance
    if reaches.any():
        best = int(np.flatnonzero(reaches)[np.argmax(state_value[reaches])])
    else:
        best = int(np.argmax(state_cost[:, 0]))
    picked, index = [], best
    for parent, choice in reversed(parents):
        picked.append(int(choice[index]))
        index = int(parent[index])
    return Selection(tuple(reversed(picked)), float(state_value[best]), float(state_cost[best][0]))
