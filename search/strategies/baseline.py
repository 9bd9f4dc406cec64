"""The base of the baselines over the LUT (random search, aging evolution): they train stand-alone
candidates briefly and keep the one with the best validation accuracy, instead of a supernet.
Every candidate is within the budgets (sampled or mutated, then repaired by the exact knapsack
solver if it is not)."""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from search.mckp import solve_mckp
from search.spaces.base import SearchSpace
from search.strategies.base import Budget, Strategy
from search.train import train_child

PROXY_EPOCHS = 1  # each candidate's training: a proxy for its accuracy, not the final one
REJECTION_TRIES = 200
Emit = Callable[[dict[str, Any]], None]


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


class BaselineStrategy(Strategy):
    """Trains up to `trials` candidates of `space` (each `PROXY_EPOCHS` on the train split,
    ranked by validation accuracy; a candidate seen before is not trained again) and returns the
    best one's choices. Subclasses say which candidates (`explore`)."""

    def __init__(
        self,
        space: SearchSpace,
        budgets: Sequence[Budget],
        data: Any,
        *,
        trials: int,
        seed: int,
        batch_size: int,
        emit: Emit,
        **options: Any,
    ) -> None:
        self.space, self.budgets, self.data = space, list(budgets), data
        self.trials, self.seed, self.batch_size = max(1, trials), seed, batch_size
        self.emit = emit
        self.options = self.check_options(options)
        self.rng = random.Random(seed)
        self.seen: dict[tuple[int, ...], float] = {}

    def run(self) -> list[int]:
        self.explore()
        best: tuple[int, ...] = max(self.seen, key=self.seen.__getitem__)
        return list(best)

    @abstractmethod
    def explore(self) -> None:
        """Evaluate candidates with `fitness` until the trials are spent."""

    def sample(self) -> list[int]:
        return feasible_sample(self.rng, self.space, self.budgets)

    def fitness(self, choices: list[int]) -> float:
        """The candidate's validation accuracy after its proxy training (trained once)."""
        key = tuple(choices)
        if key not in self.seen:
            arch = self.space.architecture(
                [s.candidates[i] for s, i in zip(self.space.layers, choices, strict=True)]
            )
            result = train_child(
                self.space.build(arch),
                self.data.train,
                self.data.val,
                epochs=PROXY_EPOCHS,
                seed=self.seed,
                batch_size=self.batch_size,
            )
            self.seen[key] = result.val_accuracy
            self.emit(
                {
                    "type": "trial",
                    "trial": len(self.seen),
                    "trials": self.trials,
                    "arch": arch.to_string(),
                    "accuracy": result.val_accuracy,
                }
            )
        return self.seen[key]
