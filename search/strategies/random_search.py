"""Random search under the budgets: the baseline every NAS method must beat."""

from __future__ import annotations

from search.strategies.base import register_strategy
from search.strategies.baseline import BaselineStrategy


@register_strategy("random")
class RandomSearch(BaselineStrategy):
    """`trials` architectures drawn uniformly from those within every budget; the best by
    validation accuracy after a short training wins."""

    def explore(self) -> None:
        for _ in range(self.trials):
            self.fitness(self.sample())
