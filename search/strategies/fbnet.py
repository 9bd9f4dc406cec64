"""FBNet (Wu et al. 2019) over the LUT cost model, tuned for searches of a few epochs under a
budget."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from search.strategies.base import StepDetails, register_strategy
from search.strategies.latency_aware import LatencyAware
from search.strategies.relaxation import annealed_temperature, check_relaxation, relaxed_forward


@register_strategy("fbnet")
class FBNetStrategy(LatencyAware):
    """Gumbel-softmax relaxation with an annealed temperature, every path computed in the
    architecture step (`relaxation="soft"`), and a latency factor (E[lat] / B)^β on the task loss.

    | option | default | meaning |
    |---|---|---|
    | `tau0`, `tau_end` | 5.0, 0.5 | temperature, annealed geometrically over the search's epochs |
    | `tau_decay` | None | a per-epoch decay instead (the paper's 0.956 suits 90 epochs) |
    | `alpha` | 1.0 | scale of the latency factor |
    | `beta`, `beta_below` | 0.6, −0.6 | the factor's exponent above and under the budget |
    | `relaxation` | soft | `hard`: one straight-through path per layer (memory of one path) |
    | `latency_step` | mirror | `adam`: the paper's product loss CE · factor through Adam |
    | `latency_lr` | 0.3 | the mirror step's rate η |
    | `derive` | budget | `argmax`: the paper's argmax instead of the knapsack derive |
    | `min_budget_share` | 0.9 | the derive's floor, a share of the budget |

    Where it departs from the paper, and why:
    - The latency factor takes a mirror-descent step on every layer's simplex after Adam's step
      on the cross-entropy, α ← α − η·β·cost/E[lat] (the direction of hardcore's projections;
      `LatencyAware.mirror_latency_step`). Adam divides each α's gradient by its own running
      scale, so through Adam every choice dearer than its layer's mean is pushed down at about
      the same rate whatever its cost, and cheap and dear layers end equally cheap.
    - Latency is relative to the budget (the paper's log(ms) is negative below 1 ms), with one
      exponent per side (as MnasNet; TuNAS's |E/B − 1| likewise): the loss is lowest at the
      budget, which pulls the search to it rather than to the cheapest network (mostly `skip`).
    - The temperature anneals from `tau0` to `tau_end` over however many epochs the search has.
    - The result is the most likely architecture within the budget (exact knapsack over log p;
      the argmax whenever that fits), traded for latency up to `min_budget_share` of the budget
      where it falls short: a short search ends before the distribution is peaked, and its
      argmax can lie well past (or far under) the budget its expected latency meets.
    - The architecture learning rate is 0.05 (the paper: 0.01 over 90 epochs): Adam moves each
      α by about the learning rate per step, and a few epochs have a few dozen steps.
    The measurements behind these choices are in docs/strategies.md."""

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

    def architecture_loss(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, StepDetails]:
        task = F.cross_entropy(relaxed_forward(self, images, self.tau, generator), labels)
        ratios, expected = self.latency_ratios()
        factor = self.two_sided_factor(ratios, float(self.options["alpha"]))
        loss = task if self.mirror_step else task * factor
        return loss, StepDetails((task * factor).item(), task.item(), expected, factor.item())

    def describe(self) -> dict[str, float]:
        return {"temperature": self.tau}

    def state(self) -> dict[str, Any]:
        return {"tau": self.tau}

    def load_state(self, state: dict[str, Any]) -> None:
        self.tau = float(state.get("tau", self.tau))
