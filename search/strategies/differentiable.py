"""The differentiable strategies: FBNet, ProxylessNAS and HardCoRe-NAS over the LUT cost model."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from search.mckp import solve_mckp_multi
from search.strategies.base import (
    SearchStrategy,
    StepDetails,
    argmax_choices,
    register_strategy,
)


def gumbel_weights(
    alpha: torch.Tensor, tau: float, hard: bool, gen: torch.Generator
) -> torch.Tensor:
    uniform = torch.rand(alpha.shape, generator=gen).clamp_(1e-10, 1 - 1e-10)
    soft = torch.softmax((alpha - torch.log(-torch.log(uniform))) / tau, dim=0)
    if not hard:
        return soft
    one_hot = F.one_hot(soft.argmax(), alpha.numel()).to(soft)
    return one_hot - soft.detach() + soft  # straight-through: forward one path, gradient to all


class _LatencyAware(SearchStrategy):
    """Shared by the soft-penalty strategies: latency relative to each device's budget."""

    def latency_ratio(self) -> tuple[torch.Tensor, dict[str, float]]:
        expected = self.expected_latencies()
        ratio = torch.ones(())
        for budget in self.budgets:
            ratio = ratio * expected[budget.device] / budget.latency_ms
        return ratio, {d: v.item() for d, v in expected.items()}


@register_strategy("fbnet")
class FBNetStrategy(_LatencyAware):
    """FBNet (Wu et al. 2019): Gumbel-softmax relaxation with an annealed temperature, every path
    computed in the architecture step, loss CE · α · (E[lat] / budget)^β. The paper's log(ms)
    form is negative below 1 ms, so the latency is taken relative to the budget instead."""

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {"tau0": 5.0, "tau_decay": 0.956, "alpha": 1.0, "beta": 0.6}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tau = float(self.options["tau0"])

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        self.tau = float(self.options["tau0"]) * float(self.options["tau_decay"]) ** epoch

    def architecture_loss(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, StepDetails]:
        modes = [gumbel_weights(a, self.tau, False, generator) for a in self.supernet.alphas]
        task = F.cross_entropy(self.supernet(images, modes, dense=True), labels)
        ratio, expected = self.latency_ratio()
        factor = self.options["alpha"] * ratio ** self.options["beta"]
        loss = task * factor
        return loss, StepDetails(loss.item(), task.item(), expected, factor.item())

    def derive(self) -> list[int]:
        return argmax_choices(self.supernet)

    def describe(self) -> dict[str, float]:
        return {"temperature": self.tau}

    def state(self) -> dict[str, Any]:
        return {"tau": self.tau}

    def load_state(self, state: dict[str, Any]) -> None:
        self.tau = float(state.get("tau", self.tau))


@register_strategy("proxyless")
class ProxylessStrategy(_LatencyAware):
    """ProxylessNAS (Cai et al. 2019): binarised paths — two candidates sampled per layer and
    architecture step, gates with straight-through gradients to their renormalised
    probabilities; weights trained on one sampled path. Latency as a multiplicative
    (CE · (E/B)^β) or additive (CE + λ · E/B) penalty."""

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {"penalty": "mul", "beta": 0.6, "lam": 0.1}

    def architecture_loss(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, StepDetails]:
        modes: list[Any] = []
        for alpha in self.supernet.alphas:
            probs = torch.softmax(alpha, dim=0)
            count = min(2, alpha.numel())
            pair = torch.multinomial(probs.detach(), count, generator=generator).tolist()
            sub = torch.softmax(alpha[pair], dim=0)
            pick = int(torch.multinomial(sub.detach(), 1, generator=generator))
            gates = F.one_hot(torch.tensor(pick), count).to(sub) - sub.detach() + sub
            weights = torch.zeros_like(alpha).index_put((torch.tensor(pair),), gates)
            modes.append((weights, pair))
        task = F.cross_entropy(self.supernet(images, modes), labels)
        ratio, expected = self.latency_ratio()
        if self.options["penalty"] == "mul":
            penalty = ratio ** self.options["beta"]
            loss = task * penalty
        elif self.options["penalty"] == "add":
            penalty = self.options["lam"] * ratio
            loss = task + penalty
        else:
            raise ValueError("proxyless penalty must be 'mul' or 'add'")
        return loss, StepDetails(loss.item(), task.item(), expected, penalty.item())

    def derive(self) -> list[int]:
        return argmax_choices(self.supernet)


@register_strategy("hardcore")
class HardCoReStrategy(SearchStrategy):
    """HardCoRe-NAS (Nayman et al. 2021): a hard latency budget. After every architecture step the
    probabilities are projected (KL / Bregman projection: α ← α − λ·cost, λ ≥ 0 by bisection) so
    that E[lat] ≤ budget on every device; the final architecture maximises Σ log p subject to
    Σ LUT ≤ budget, solved exactly (multiple-choice knapsack): its predicted latency is within
    the budget by construction. Paths are sampled with straight-through hard Gumbel-softmax."""

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {"tau0": 5.0, "tau_decay": 0.9, "tau_min": 0.5, "min_budget_share": 0.9}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.budgets:
            raise ValueError("the hardcore strategy needs a latency budget (--latency-ms)")
        self.tau = float(self.options["tau0"])
        self.project()

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        decayed = float(self.options["tau0"]) * float(self.options["tau_decay"]) ** epoch
        self.tau = max(decayed, float(self.options["tau_min"]))

    def architecture_loss(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, StepDetails]:
        modes = [gumbel_weights(a, self.tau, True, generator) for a in self.supernet.alphas]
        loss = F.cross_entropy(self.supernet(images, modes), labels)
        expected = {d: v.item() for d, v in self.expected_latencies().items()}
        return loss, StepDetails(loss.item(), loss.item(), expected)

    def after_architecture_step(self) -> None:
        self.project()

    @torch.no_grad()
    def project(self, rounds: int = 20) -> None:
        """Cyclic KL projections onto {share·B_d <= E_d[lat] <= B_d for every device d}: the
        upper bound is the hard budget; the lower one keeps the search from collapsing onto
        cheap ops (skip) and throwing the budget — and the accuracy it buys — away."""
        share = float(self.options["min_budget_share"])
        for _ in range(rounds):
            moved = False
            for budget in self.budgets:
                tables = budget.cost_model.table()
                high = budget.latency_ms - budget.cost_model.constant_ms
                low = share * budget.latency_ms - budget.cost_model.constant_ms
                current = _expected(self.supernet.alphas, tables, 0.0)
                if current > high:
                    lam = _bisect_lambda(self.supernet.alphas, tables, high, sign=1.0)
                elif current < low and _expected(self.supernet.alphas, tables, -1e9) > low:
                    lam = -_bisect_lambda(self.supernet.alphas, tables, low, sign=-1.0)
                else:
                    continue
                moved = True
                for alpha, cost in zip(self.supernet.alphas, tables, strict=True):
                    alpha.sub_(lam * cost)
            if not moved:
                return

    def derive(self) -> list[int]:
        """Maximise Σ log p within every budget (exact knapsack, one cost dimension per device);
        if that leaves more than (1 - min_budget_share) of the primary budget unused, trade
        likelihood for latency (values + μ·cost, μ by bisection) — never past any budget."""
        log_probs = [torch.log_softmax(a.detach(), 0).tolist() for a in self.supernet.alphas]
        primary = self.budgets[0].cost_model
        capacities = [b.latency_ms - b.cost_model.constant_ms for b in self.budgets]
        costs = [
            [list(per_device) for per_device in zip(*layer, strict=True)]
            for layer in zip(*(b.cost_model.layer_costs for b in self.budgets), strict=True)
        ]
        target = float(self.options["min_budget_share"]) * self.budgets[0].latency_ms

        def solve(mu: float) -> list[int]:
            values = [
                [v + mu * c for v, c in zip(vs, cs, strict=True)]
                for vs, cs in zip(log_probs, primary.layer_costs, strict=True)
            ]
            return list(solve_mckp_multi(values, costs, capacities).choices)

        choices = solve(0.0)
        if primary.cost(choices) < target:
            low, high = 0.0, 1.0
            while primary.cost(solve(high)) < target and high < 1e9:
                high *= 4
            for _ in range(40):
                mid = (low + high) / 2
                low, high = (mid, high) if primary.cost(solve(mid)) < target else (low, mid)
            choices = solve(high)
        return choices

    def describe(self) -> dict[str, float]:
        return {"temperature": self.tau}

    def state(self) -> dict[str, Any]:
        return {"tau": self.tau}

    def load_state(self, state: dict[str, Any]) -> None:
        self.tau = float(state.get("tau", self.tau))


def _expected(alphas: Any, tables: list[torch.Tensor], lam: float) -> float:
    return float(
        sum((torch.softmax(a - lam * c, 0) * c).sum() for a, c in zip(alphas, tables, strict=True))
    )


def _bisect_lambda(alphas: Any, tables: list[torch.Tensor], target: float, sign: float) -> float:
    """Smallest λ ≥ 0 with E[lat](softmax(α − sign·λ·cost)) on the target's side: <= target for
    sign +1 (shrink), >= target for sign -1 (grow). E[lat] is monotone in λ."""

    def beyond(lam: float) -> bool:
        value = _expected(alphas, tables, sign * lam)
        return value > target if sign > 0 else value < target

    low, high = 0.0, 1.0
    while beyond(high):
        high *= 2.0
        if high > 1e12:
            raise ValueError("latency budget cannot be met by any distribution (infeasible)")
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if beyond(mid) else (low, mid)
    return high
