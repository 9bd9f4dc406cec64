"""The base of the soft-penalty strategies (fbnet, proxyless): latency relative to each device's
budget, a penalty exponent per side of it, and the budget-aware derive."""

from __future__ import annotations

from typing import Any

import torch

from search.strategies.base import SearchStrategy, argmax_choices
from search.strategies.knapsack_derive import most_likely_above

DERIVES = ("budget", "argmax")


class LatencyAware(SearchStrategy):
    """Shared by the soft-penalty strategies: latency relative to each device's budget, a
    penalty exponent per side of it, and the budget-aware derive.

    Options they share: `beta_below`, the exponent of E/B under the budget (`beta` is the one
    above); `derive` ("budget": the most likely architecture within every budget and above
    `min_budget_share` of the first; "argmax": the papers' plain argmax)."""

    @staticmethod
    def budget_option_defaults() -> dict[str, Any]:
        return {"beta_below": -0.6, "derive": "budget", "min_budget_share": 0.9}

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> None:
        name = cls.__name__.removesuffix("Strategy").lower()
        if options["derive"] not in DERIVES:
            raise ValueError(
                f"{name} derive must be 'budget' or 'argmax', not {options['derive']!r}"
            )
        share = options["min_budget_share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(f"{name} min_budget_share must be between 0 and 1, not {share!r}")

    def two_sided_factor(self, ratios: list[torch.Tensor], scale: float) -> torch.Tensor:
        """scale · Π_d (E_d/B_d)^β, each device's exponent `beta` above its budget and
        `beta_below` under it: with β > 0 > beta_below the factor is lowest at the budget."""
        factor = torch.full((), float(scale))
        for ratio in ratios:
            above = ratio.item() > 1.0
            factor = factor * ratio ** self.options["beta" if above else "beta_below"]
        return factor

    def derive(self) -> list[int]:
        """The argmax architecture (`derive="argmax"`, the papers'); by default, with budgets,
        the most likely architecture within every budget (exact knapsack over log p), which is
        the argmax whenever that fits, traded for latency up to `min_budget_share` of the first
        budget where it falls short (`most_likely_above`)."""
        if self.options["derive"] == "argmax" or not self.budgets:
            return argmax_choices(self.supernet)
        log_probs = [torch.log_softmax(a.detach(), 0).tolist() for a in self.supernet.alphas]
        limits = [b.latency_ms for b in self.budgets]
        floor = float(self.options["min_budget_share"]) * limits[0]
        return most_likely_above(log_probs, self.budgets, limits, floor)

    def latency_ratios(self) -> tuple[list[torch.Tensor], dict[str, float]]:
        """E_d[lat] / B_d per budget, differentiable; and E_d[lat] per device for the log."""
        expected = self.expected_latencies()
        ratios = [expected[b.device] / b.latency_ms for b in self.budgets]
        return ratios, {d: v.item() for d, v in expected.items()}

    def latency_ratio(self) -> tuple[torch.Tensor, dict[str, float]]:
        """The product of the per-device ratios (1 without budgets)."""
        ratios, expected = self.latency_ratios()
        product = torch.ones(())
        for ratio in ratios:
            product = product * ratio
        return product, expected
