"""Aging evolution (Real et al. 2019) under the budgets."""

from __future__ import annotations

import collections

from search.strategies.base import register_strategy
from search.strategies.baseline import REJECTION_TRIES, BaselineStrategy, within


@register_strategy("evolution")
class AgingEvolution(BaselineStrategy):
    """A population of max(4, trials / 2) feasible architectures (at most `trials`); each later
    trial mutates one layer of the fittest of a random half of the population, and the oldest
    member dies (aging), not the worst. The first population is drawn before any is trained, so
    it can train side by side; each later trial needs the fitness of the one before it."""

    def explore(self) -> None:
        size = max(2, min(self.trials, max(4, self.trials // 2)))
        contenders_per_round = max(2, size // 2)
        population: collections.deque[list[int]] = collections.deque()
        population.extend(self.sample() for _ in range(size))
        self.fitness_of(list(population))
        for _ in range(self.trials - size):
            contenders = self.rng.sample(list(population), min(contenders_per_round, size))
            population.append(self.mutate(max(contenders, key=self.fitness)))
            self.fitness(population[-1])
            population.popleft()

    def mutate(self, parent: list[int]) -> list[int]:
        """`parent` with one layer changed, within the budgets (a fresh sample if no try is)."""
        for _ in range(REJECTION_TRIES):
            child = list(parent)
            layer = self.rng.randrange(len(child))
            options = [
                i for i in range(len(self.space.layers[layer].candidates)) if i != child[layer]
            ]
            if options:
                child[layer] = self.rng.choice(options)
            if within(self.budgets, child):
                return child
        return self.sample()
