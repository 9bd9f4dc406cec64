"""The base of the soft-penalty strategies (fbnet, proxyless): latency relative to each device's
budget, a penalty exponent per side of it, the mirror latency step, and the budget-aware
derive."""

from __future__ import annotations

from typing import Any

import torch

from search.strategies.base import SearchStrategy, argmax_choices
from search.strategies.knapsack_derive import most_likely_above

DERIVES = ("budget", "argmax")
LATENCY_STEPS = ("mirror", "adam")


class LatencyAware(SearchStrategy):
    """Shared by the soft-penalty strategies: latency relative to each device's budget, a
    penalty exponent per side of it, and the budget-aware derive.

    Options they share: `beta_below`, the exponent of E/B under the budget (`beta` is the one
    above); `latency_step` ("mirror": the latency penalty taken by a mirror step on the logits
    after Adam's step on the task loss, at rate `latency_lr`; "adam": the penalty in Adam's
    loss, as the papers); `derive` ("budget": the most likely architecture within every budget
    and above `min_budget_share` of the first; "argmax": the papers' plain argmax)."""

    @staticmethod
    def budget_option_defaults() -> dict[str, Any]:
        return {
            "beta_below": -0.6,
            "latency_step": "mirror",
            "latency_lr": 0.3,
            "derive": "budget",
            "min_budget_share": 0.9,
        }

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
        if options["latency_step"] not in LATENCY_STEPS:
            raise ValueError(
                f"{name} latency_step must be 'mirror' or 'adam', not {options['latency_step']!r}"
            )
        rate = options["latency_lr"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 10:
            raise ValueError(f"{name} latency_lr must be in (0, 10], not {rate!r}")

    @property
    def mirror_step(self) -> bool:
        """Whether the latency penalty is a step of its own (`latency_step="mirror"`), not a
        term of the loss Adam steps on."""
        return bool(self.options["latency_step"] == "mirror")

    def after_architecture_step(self) -> None:
        if self.mirror_step:
            self.mirror_latency_step()

    @torch.no_grad()
    def mirror_latency_step(self) -> None:
        """The latency penalty's step on each layer's simplex in its own geometry (mirror
        descent, entropic), α ← α − η·g with g the penalty's gradient in p: for the factor
        Π_d (E_d/B_d)^β_d that of its log, Σ_d β_d·cost_d/E_d (β_d = `beta` over the budget,
        `beta_below` under it); for an additive P = λ·Π_d E_d/B_d (proxyless's `penalty="add"`),
        Σ_d P·cost_d/E_d. It moves each choice in proportion to its cost, the direction of
        hardcore's projections (α − λ·cost): through Adam, which divides each α's gradient by
        its own running scale, every choice dearer than its layer's mean is pushed down at about
        the same rate whatever its cost, and cheap and dear layers end equally cheap."""
        expected = self.expected_latencies()
        rate = float(self.options["latency_lr"])
        additive = self.options.get("penalty") == "add"
        penalty = float(self.options.get("lam", 0.0))
        for budget in self.budgets:
            penalty *= expected[budget.device].item() / budget.latency_ms
        for budget in self.budgets:
            e = expected[budget.device].item()
            if additive:
                step = rate * penalty / e
            else:
                exponent = self.options["beta" if e > budget.latency_ms else "beta_below"]
                step = rate * float(exponent) / e
            for alpha, costs in zip(
                self.supernet.alphas, budget.cost_model.layer_costs, strict=True
            ):
                alpha.sub_(step * torch.as_tensor(costs, dtype=alpha.dtype))

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
