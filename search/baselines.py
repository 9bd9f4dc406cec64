"""Baselines over the same LUT: random search and aging evolution (Real et al. 2019). Each
candidate is trained briefly and ranked by validation accuracy; every candidate is within the
budgets (sampled or mutated, then repaired by the exact knapsack solver if it is not)."""

from __future__ import annotations

import collections
import random
from collections.abc import Callable, Sequence
from typing import Any

from search.mckp import solve_mckp
from search.spaces.base import SearchSpace
from search.strategies.base import Budget
from search.train import train_child

PROXY_EPOCHS = 1
REJECTION_TRIES = 200


def within(budgets: Sequence[Budget], choices: Sequence[int]) -> bool:
    return all(b.cost_model.cost(choices) <= b.latency_ms for b in budgets)


def feasible_sample(rng: random.Random, space: SearchSpace, budgets: Sequence[Budget]) -> list[int]:
    """Uniform over the space restricted to the budgets (rejection sampling); where feasible
    architectures are rare, an exact knapsack solve with random scores (always feasible)."""
    sizes = [len(slot.candidates) for slot in space.layers]
    for _ in range(REJECTION_TRIES):
        choices = [rng.randrange(n) for n in sizes]
        if within(budgets, choices):
            return choices
    for _ in range(REJECTION_TRIES):
        scores = [[rng.random() for _ in range(n)] for n in sizes]
        primary = budgets[0]
        selection = solve_mckp(
            scores,
            primary.cost_model.layer_costs,
            primary.latency_ms - primary.cost_model.constant_ms,
        )
        if within(budgets, selection.choices):
            return list(selection.choices)
    raise ValueError("could not find an architecture within every budget")


def mutate(
    rng: random.Random, space: SearchSpace, parent: Sequence[int], budgets: Sequence[Budget]
) -> list[int]:
    for _ in range(REJECTION_TRIES):
        child = list(parent)
        layer = rng.randrange(len(child))
        options = [i for i in range(len(space.layers[layer].candidates)) if i != child[layer]]
        if options:
            child[layer] = rng.choice(options)
        if within(budgets, child):
            return child
    return feasible_sample(rng, space, budgets)


def run_baseline(
    request: Any,
    space: SearchSpace,
    budgets: Sequence[Budget],
    data: Any,
    emit: Callable[[dict[str, Any]], None],
) -> list[int]:
    rng = random.Random(request.settings.seed)
    trials = max(1, request.trials)
    seen: dict[tuple[int, ...], float] = {}

    def fitness(choices: list[int]) -> float:
        key = tuple(choices)
        if key not in seen:
            arch = space.architecture(
                [s.candidates[i] for s, i in zip(space.layers, choices, strict=True)]
            )
            result = train_child(
                space.build(arch),
                data.train,
                data.val,
                epochs=PROXY_EPOCHS,
                seed=request.settings.seed,
                batch_size=request.settings.batch_size,
            )
            seen[key] = result.val_accuracy
            emit(
                {
                    "type": "trial",
                    "trial": len(seen),
                    "trials": trials,
                    "arch": arch.to_string(),
                    "accuracy": result.val_accuracy,
                }
            )
        return seen[key]

    if request.settings.strategy == "random":
        for _ in range(trials):
            fitness(feasible_sample(rng, space, budgets))
    else:
        population_size = max(2, min(trials, max(4, trials // 2)))
        sample_size = max(2, population_size // 2)
        population: collections.deque[list[int]] = collections.deque()
        for _ in range(population_size):
            population.append(feasible_sample(rng, space, budgets))
            fitness(population[-1])
        for _ in range(trials - population_size):
            contenders = rng.sample(list(population), min(sample_size, len(population)))
            parent = max(contenders, key=fitness)
            population.append(mutate(rng, space, parent, budgets))
            fitness(population[-1])
            population.popleft()  # aging: the oldest dies, not the worst
    best = max(seen, key=lambda k: seen[k])
    return list(best)
