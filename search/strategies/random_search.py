"""Random search under the budgets: the baseline every NAS method must beat."""

from __future__ import annotations

from search.strategies.base import register_strategy
from search.strategies.baseline import BaselineStrategy


@register_strategy("random")
class RandomSearch(BaselineStrategy):
    """`trials` architectures drawn uniformly from those within every budget; the best by
    validation accuracy after a short training wins. All are drawn first (training draws no
    numbers from the sampler), so they can train side by side."""

    def explore(self) -> None:
        self.fitness_of([self.sample() for _ in range(self.trials)])
