"""HardCoRe-NAS (Nayman et al. 2021) over the LUT cost model: a hard latency budget."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from search.strategies.base import Budget, SearchStrategy, StepDetails, register_strategy
from search.strategies.knapsack_derive import most_likely_above
from search.strategies.projection import project_onto_bands, stack_rows
from search.strategies.relaxation import annealed_temperature, check_relaxation, relaxed_forward

# "auto" margin = AUTO_MARGIN_Z × the calibration's leave-one-out MAPE: for normal errors the
# mean absolute error is 0.8 σ, so 2 × MAPE ≈ 1.6 σ, a one-sided 95% bound.
AUTO_MARGIN_Z = 2.0
MAX_MARGIN = 0.5


@register_strategy("hardcore")
class HardCoReStrategy(SearchStrategy):
    """After every architecture step the probabilities are projected (KL / Bregman projection:
    α ← α − λ·cost, λ ≥ 0 by bisection) so that floor ≤ E[lat] ≤ limit on every device; the
    final architecture maximises Σ log p subject to Σ LUT ≤ limit, solved exactly
    (multiple-choice knapsack; where that falls under the floor, a band knapsack optimal up to
    its cost bins): its predicted latency is within the budget by construction.

    | option | default | meaning |
    |---|---|---|
    | `tau0`, `tau_end` | 5.0, 0.5 | temperature, annealed geometrically over the search's epochs |
    | `tau_decay`, `tau_min` | None, 0.5 | a per-epoch decay instead (the paper's 0.9), floored |
    | `min_budget_share` | 0.9 | the floor: the share of the budget the search and result use |
    | `margin` | auto | the limit is the budget less this fraction; `auto` is 2 × the calibration's leave-one-out error (0 uncalibrated) |
    | `relaxation` | hard | one straight-through path per layer; `soft` weights every path (FBNet's; about twice the time and memory) |

    The `auto` margin keeps the *measured* latency, not just the predicted one, within the
    budget in about 95% of searches: for normal errors the mean absolute error is 0.8 σ, so
    2 × the error is a one-sided 95% bound. The limit never goes below the space's smallest
    latency. The floor keeps the search from collapsing onto cheap ops and throwing the budget,
    and the accuracy it buys, away. The schedule (annealing over the search's epochs, an
    architecture learning rate of 0.05) is set for searches of a few epochs, as fbnet's.
    Measurements: docs/strategies.md."""

    default_arch_lr = 0.05

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {
            "tau0": 5.0,
            "tau_end": 0.5,
            "tau_decay": None,
            "tau_min": 0.5,
            "min_budget_share": 0.9,
            "margin": "auto",
            "relaxation": "hard",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.budgets:
            raise ValueError("the hardcore strategy needs a latency budget (--latency-ms)")
        self.margins = [self._margin(b) for b in self.budgets]
        self.limits_ms = [
            max(b.latency_ms * (1.0 - m), b.cost_model.min_latency_ms)
            for b, m in zip(self.budgets, self.margins, strict=True)
        ]
        self.tau = float(self.options["tau0"])
        self._cost_rows = [stack_rows(b.cost_model.layer_costs, pad=0.0) for b in self.budgets]
        self.project()

    def replace_budget(self, index: int, budget: Budget) -> None:
        super().replace_budget(index, budget)
        self.margins[index] = self._margin(budget)
        self.limits_ms[index] = max(
            budget.latency_ms * (1.0 - self.margins[index]), budget.cost_model.min_latency_ms
        )
        self._cost_rows[index] = stack_rows(budget.cost_model.layer_costs, pad=0.0)

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> None:
        check_relaxation("hardcore", options)
        margin = options["margin"]
        if margin == "auto":
            return
        if isinstance(margin, bool) or not isinstance(margin, int | float):
            raise ValueError(f"hardcore margin must be 'auto' or a number, not {margin!r}")
        if not 0.0 <= margin <= MAX_MARGIN:
            raise ValueError(f"hardcore margin must be between 0 and {MAX_MARGIN}, not {margin}")

    def _margin(self, budget: Budget) -> float:
        margin = self.options["margin"]
        if margin == "auto":
            error = budget.cost_model.error_loo
            return 0.0 if error is None else min(AUTO_MARGIN_Z * error, MAX_MARGIN)
        return float(margin)

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        tau = annealed_temperature(
            float(self.options["tau0"]),
            float(self.options["tau_end"]),
            self.options["tau_decay"],
            epoch,
            epochs,
        )
        self.tau = max(tau, float(self.options["tau_min"]))

    def architecture_loss(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, StepDetails]:
        loss = F.cross_entropy(relaxed_forward(self, images, self.tau, generator), labels)
        expected = {d: v.item() for d, v in self.expected_latencies().items()}
        return loss, StepDetails(loss.item(), loss.item(), expected)

    def after_architecture_step(self) -> None:
        self.project()

    def _floors_ms(self) -> list[float]:
        """The share of each budget the search should use, never above its limit."""
        share = float(self.options["min_budget_share"])
        return [
            min(share * b.latency_ms, limit)
            for b, limit in zip(self.budgets, self.limits_ms, strict=True)
        ]

    def project(self, rounds: int = 20) -> None:
        """Cyclic KL projections onto {floor_d <= E_d[lat] <= limit_d for every device d}: the
        upper bound is the hard budget (less its margin); the lower one keeps the search from
        collapsing onto cheap ops (skip) and throwing the budget — and the accuracy it buys —
        away."""
        constants = [b.cost_model.constant_ms for b in self.budgets]
        project_onto_bands(
            list(self.supernet.alphas),
            self._cost_rows,
            [floor - c for floor, c in zip(self._floors_ms(), constants, strict=True)],
            [limit - c for limit, c in zip(self.limits_ms, constants, strict=True)],
            rounds,
        )

    def derive(self) -> list[int]:
        """Maximise Σ log p within every limit (exact knapsack, one cost dimension per device);
        if that leaves the primary device under its floor, the most likely architecture between
        the floor and the limits (`most_likely_above`) — never past any limit."""
        log_probs = [torch.log_softmax(a.detach(), 0).tolist() for a in self.supernet.alphas]
        return most_likely_above(log_probs, self.budgets, self.limits_ms, self._floors_ms()[0])

    def describe(self) -> dict[str, float]:
        return {"temperature": self.tau}

    def report(self) -> dict[str, Any]:
        return {
            "margin": dict(zip((b.device for b in self.budgets), self.margins, strict=True)),
            "limit_ms": dict(zip((b.device for b in self.budgets), self.limits_ms, strict=True)),
        }

    def state(self) -> dict[str, Any]:
        return {"tau": self.tau}

    def load_state(self, state: dict[str, Any]) -> None:
        self.tau = float(state.get("tau", self.tau))
