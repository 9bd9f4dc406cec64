"""The differentiable strategies: FBNet, ProxylessNAS and HardCoRe-NAS over the LUT cost model."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from search.mckp import solve_mckp_band, solve_mckp_multi
from search.strategies.base import (
    Budget,
    SearchStrategy,
    StepDetails,
    argmax_choices,
    register_strategy,
)
from search.strategies.projection import project_onto_bands, stack_rows


def gumbel_weights(
    alpha: torch.Tensor, tau: float, hard: bool, gen: torch.Generator
) -> torch.Tensor:
    uniform = torch.rand(alpha.shape, generator=gen).clamp_(1e-10, 1 - 1e-10)
    soft = torch.softmax((alpha - torch.log(-torch.log(uniform))) / tau, dim=0)
    if not hard:
        return soft
    one_hot = F.one_hot(soft.argmax(), alpha.numel()).to(soft)
    return one_hot - soft.detach() + soft  # straight-through: forward one path, gradient to all


def annealed_temperature(
    tau0: float, tau_end: float, decay: float | None, epoch: int, epochs: int
) -> float:
    """`tau0 · decay^epoch` with a per-epoch `decay`, else geometric from `tau0` at the first
    epoch to `tau_end` at the last, whatever the number of epochs."""
    if decay is not None:
        return tau0 * float(decay) ** epoch
    if epochs <= 1:
        return tau_end
    return tau0 * (tau_end / tau0) ** (epoch / (epochs - 1))


DERIVES = ("budget", "argmax")
RELAXATIONS = ("soft", "hard")
LATENCY_STEPS = ("mirror", "adam")


def check_relaxation(name: str, options: dict[str, Any]) -> None:
    if options["relaxation"] not in RELAXATIONS:
        raise ValueError(
            f"{name} relaxation must be 'soft' or 'hard', not {options['relaxation']!r}"
        )


def relaxed_forward(
    strategy: SearchStrategy, images: torch.Tensor, tau: float, generator: torch.Generator
) -> torch.Tensor:
    """The supernet's logits in an architecture step under the strategy's `relaxation`: "soft"
    weights every candidate's output by its Gumbel-softmax weight (FBNet's; each α gets every
    path's gradient); "hard" runs one straight-through path per layer, the argmax of the noisy
    logits (the memory and time of one path)."""
    dense = strategy.options["relaxation"] == "soft"
    alphas = strategy.supernet.alphas
    modes = [gumbel_weights(a, tau, not dense, generator) for a in alphas]
    return strategy.supernet(images, modes, dense=dense)


class _LatencyAware(SearchStrategy):
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


@register_strategy("fbnet")
class FBNetStrategy(_LatencyAware):
    """FBNet (Wu et al. 2019): Gumbel-softmax relaxation with an annealed temperature, every path
    computed in the architecture step, loss CE · α · (E[lat] / budget)^β.

    Five departures from the paper, each for a search with a budget that runs a few epochs:
    - The latency factor's gradient is not passed through Adam with the task loss's
      (`latency_step="adam"` does, as the paper): each architecture step takes Adam's step on
      the cross-entropy, then a mirror-descent step of the factor on every layer's simplex,
      α ← α − η·β·cost/E[lat] (`latency_lr` η = 0.3; β the exponent of the budget's side),
      which is the direction of hardcore's projections. Adam divides each α's gradient by its
      own running scale, so through it every choice dearer than its layer's mean is pushed
      down at about the same rate whatever its cost: after the first step every probability
      of a layer was one of two values, and after 48 steps the e6 blocks of the cheapest
      layer (12 µs) were as unlikely as those of the dearest (94 µs). At 0.30 of fbnet-tiny's
      range its results were then nearly all-e1 (4 seeds, search_quality_fbadam.*: 0.25 pp
      under the better baseline), with the hard relaxation too; with the mirror step they skip
      dear layers and keep e3/e6 in cheap ones, as hardcore's do (8 seeds, search_quality.*:
      +0.19 / +0.16 / +0.45 pp over the better baseline at 0.30 / 0.55 / 0.80).
    - The latency is taken relative to the budget: the paper's log(ms) is negative below 1 ms.
    - The exponent is β above the budget and `beta_below` (default −0.6) under it, so that the
      loss is lowest at the budget and pulls the search towards it from both sides, as TuNAS's
      absolute reward |E/B − 1| does (Bender et al. 2020); MnasNet (Tan et al. 2019) likewise
      takes one exponent per side. With one β everywhere the latency term tilts every layer
      towards its cheapest choice at any budget, and on a short search the argmax of that tilt
      is mostly `skip` (77.6% test accuracy against ~96%). Measured at 0.3 of fbnet-tiny's
      range (3 epochs, mnist5k): `beta_below` 0 ended at 60% of the budget with 3 skips of 8,
      −0.6 at 80% with none.
    - The temperature anneals geometrically from `tau0` to `tau_end` over the search's epochs.
      The paper's 0.956 per epoch is for 90 epochs; after 3 it is still 4.6 and the relaxation
      near uniform. Setting `tau_decay` restores the paper's per-epoch schedule.
    - The result is the most likely architecture within the budget (exact knapsack over log p;
      the argmax whenever that fits; `derive="argmax"` for the paper's plain argmax). A short
      search ends before the distribution is peaked, and its argmax can lie well past the
      budget its expected latency meets: 1.25× at 0.55 of fbnet-tiny's range. Where the most
      likely one uses less than `min_budget_share` (0.9) of the budget, likelihood is traded
      for latency up to that share, as hardcore does: at 0.30 of fbnet-tiny's range two
      searches ended at 59% and 73% of the budget, their children 1.6 and 1.8 pp below
      MobileNetV2 w0.5's; held to 0.9, they used 98-100% and gained 1.65 pp on the mean.
    Its architecture learning rate is 0.05 (the paper: 0.01 over 90 epochs; measured before the
    mirror step, with the whole product loss through Adam). Adam moves each α
    by about the learning rate per step; with 0.01, 48 architecture steps left the largest
    probability per layer at 0.12-0.15 and the argmax network 14% over the budget the expected
    latency met, against 0.19-0.50 and 98% of the budget with 0.05 (fbnet-tiny, mnist5k)."""

    default_arch_lr = 0.05

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {
            "tau0": 5.0,
            "tau_end": 0.5,
            "tau_decay": None,
            "alpha": 1.0,
            "beta": 0.6,
            "relaxation": "soft",
            "latency_step": "mirror",
            "latency_lr": 0.3,
            **cls.budget_option_defaults(),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tau = float(self.options["tau0"])

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        self.tau = annealed_temperature(
            float(self.options["tau0"]),
            float(self.options["tau_end"]),
            self.options["tau_decay"],
            epoch,
            epochs,
        )

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> None:
        super().validate_options(options)
        check_relaxation("fbnet", options)
        if options["latency_step"] not in LATENCY_STEPS:
            raise ValueError(
                f"fbnet latency_step must be 'mirror' or 'adam', not {options['latency_step']!r}"
            )
        rate = options["latency_lr"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 10:
            raise ValueError(f"fbnet latency_lr must be in (0, 10], not {rate!r}")

    def architecture_loss(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, StepDetails]:
        task = F.cross_entropy(relaxed_forward(self, images, self.tau, generator), labels)
        ratios, expected = self.latency_ratios()
        factor = self.two_sided_factor(ratios, float(self.options["alpha"]))
        loss = task * factor if self.options["latency_step"] == "adam" else task
        return loss, StepDetails((task * factor).item(), task.item(), expected, factor.item())

    def after_architecture_step(self) -> None:
        if self.options["latency_step"] == "mirror":
            self.mirror_latency_step()

    @torch.no_grad()
    def mirror_latency_step(self) -> None:
        """The latency factor's step on each layer's simplex in its own geometry (mirror
        descent, entropic): log Π_d (E_d/B_d)^β_d has gradient β_d·cost/E_d in p, so
        α ← α − η·Σ_d β_d·cost_d/E_d, the direction of hardcore's projections (α − λ·cost)."""
        expected = self.expected_latencies()
        rate = float(self.options["latency_lr"])
        for budget in self.budgets:
            e = expected[budget.device].item()
            exponent = self.options["beta" if e > budget.latency_ms else "beta_below"]
            step = rate * float(exponent) / e
            for alpha, costs in zip(
                self.supernet.alphas, budget.cost_model.layer_costs, strict=True
            ):
                alpha.sub_(step * torch.as_tensor(costs, dtype=alpha.dtype))

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
    (CE · (E/B)^β, the default) or additive (CE + λ · E/B) penalty.

    Two departures from the paper, FBNet's here (see its docstring): the multiplicative
    penalty's exponent is `beta` above the budget and `beta_below` (−0.6) under it, so it pulls
    towards the budget instead of towards the cheapest network at any budget; and the result is
    the most likely architecture within the budget and above `min_budget_share` (0.9) of it
    (`derive="argmax"` for the paper's). With one exponent and the argmax, one-epoch searches on
    fbnet-tiny ended on the same network (5 skips of 8) at each of 20 budgets from 0.045 to
    0.39 ms: 16-135% of the budget, over it at the smallest
    (benchmarks/results/constraint_satisfaction_soft.*). The additive penalty is the paper's,
    one-sided."""

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {"penalty": "mul", "beta": 0.6, "lam": 0.1, **cls.budget_option_defaults()}

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> None:
        super().validate_options(options)
        if options["penalty"] not in ("mul", "add"):
            raise ValueError(
                f"proxyless penalty must be 'mul' or 'add', not {options['penalty']!r}"
            )

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
        if self.options["penalty"] == "mul":
            ratios, expected = self.latency_ratios()
            penalty = self.two_sided_factor(ratios, 1.0)
            loss = task * penalty
        else:
            ratio, expected = self.latency_ratio()
            penalty = self.options["lam"] * ratio
            loss = task + penalty
        return loss, StepDetails(loss.item(), task.item(), expected, penalty.item())


# "auto" margin = AUTO_MARGIN_Z × the calibration's leave-one-out MAPE: for normal errors the
# mean absolute error is 0.8 σ, so 2 × MAPE ≈ 1.6 σ, a one-sided 95% bound.
AUTO_MARGIN_Z = 2.0
MAX_MARGIN = 0.5


@register_strategy("hardcore")
class HardCoReStrategy(SearchStrategy):
    """HardCoRe-NAS (Nayman et al. 2021): a hard latency budget. After every architecture step the
    probabilities are projected (KL / Bregman projection: α ← α − λ·cost, λ ≥ 0 by bisection) so
    that E[lat] ≤ limit on every device; the final architecture maximises Σ log p subject to
    Σ LUT ≤ limit, solved exactly (multiple-choice knapsack; where that falls under the budget
    floor, a band knapsack optimal up to its cost bins): its predicted latency is within the
    budget by construction.

    The architecture step's forward pass takes one straight-through path per layer
    (`relaxation="hard"`, the default: the memory and time of one path; the forward pass is the
    argmax of the noisy logits). `relaxation="soft"` weights every candidate's output by its
    Gumbel-softmax weight, as FBNet does, so each α gets the gradient of every path's loss; in
    search_cost (benchmarks/results/search_cost_relaxation.*, one epoch) it took 91 s and 2.4 GB
    against the hard one's 50 s and 1.3 GB, and no accuracy gain has been shown for it.

    The limit is the budget less a safety `margin` (a fraction of it). "auto" (the default)
    takes 2 × the leave-one-out error of the device's calibration, so that the measured
    latency, not just the predicted one, stays within the budget in about 95% of searches; 0
    without a calibration. Never below the space's smallest latency.

    Like FBNet's here, the schedule is set for a search of a few epochs: the temperature anneals
    geometrically from `tau0` to `tau_end` over the search's epochs (`tau_decay` sets the
    paper's per-epoch decay instead, floored at `tau_min`) and the architecture learning rate
    is 0.05. With the paper's 0.9 per epoch τ is still 4 after 3 epochs, which with a learning
    rate of 0.01 moves each α by little over a search's 48 architecture steps. With this
    schedule and the hard relaxation a 3-epoch search on fbnet-tiny ended with the largest
    probability per layer at 0.14–0.54 (9 candidates). In search_quality (4 seeds, 8-epoch
    children) its results were no more accurate than random search's under the same budget
    with the earlier μ-bisection derive and 10 calibration runs (search_quality_hc8.*), and
    +0.38 / +0.70 / +0.28 pp ahead of the better baseline's mean with the band knapsack and 20
    (search_quality.*, another VM and LUT: the cause is not isolated). The soft relaxation was
    not better on 2 seeds (search_quality_soft2.*; its searches took 426-550 s, the hard ones
    57-280 s)."""

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


def _knapsack_inputs(
    budgets: list[Budget], limits_ms: list[float]
) -> tuple[list[list[list[float]]], list[float]]:
    """Per layer and candidate the cost on every device, and each device's capacity (its limit
    less the cost model's constant)."""
    capacities = [
        limit - b.cost_model.constant_ms for b, limit in zip(budgets, limits_ms, strict=True)
    ]
    costs = [
        [list(per_device) for per_device in zip(*layer, strict=True)]
        for layer in zip(*(b.cost_model.layer_costs for b in budgets), strict=True)
    ]
    return costs, capacities


def most_likely_within(
    log_probs: list[list[float]], budgets: list[Budget], limits_ms: list[float]
) -> list[int]:
    """The choices maximising Σ log p subject to every device's predicted latency ≤ its limit:
    an exact multiple-choice knapsack, one cost per device."""
    costs, capacities = _knapsack_inputs(budgets, limits_ms)
    return list(solve_mckp_multi(log_probs, costs, capacities).choices)


def most_likely_above(
    log_probs: list[list[float]], budgets: list[Budget], limits_ms: list[float], floor_ms: float
) -> list[int]:
    """`most_likely_within`, and if that leaves the first device's predicted latency under
    `floor_ms`, the most likely choices between the floor and every limit (`solve_mckp_band`:
    within the limits exactly, its likelihood optimal up to a bin of 1/4096 of the capacity per
    layer); where the floor cannot be reached, the most expensive choices within the limits.

    It replaced a bisection on a Lagrange multiplier μ (values log p + μ·cost), which took an
    exact knapsack solve of ~1 s per μ: 27 solves were 27 s of a 54 s one-epoch search on
    fbnet-tiny (profiled), and μ only reaches the band's points on the convex hull."""
    costs, capacities = _knapsack_inputs(budgets, limits_ms)
    choices = list(solve_mckp_multi(log_probs, costs, capacities).choices)
    primary = budgets[0].cost_model
    if primary.cost(choices) >= floor_ms:
        return choices
    band = solve_mckp_band(log_probs, costs, capacities, floor_ms - primary.constant_ms)
    return choices if band is None else list(band.choices)
