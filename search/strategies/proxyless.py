"""ProxylessNAS (Cai et al. 2019) over the LUT cost model."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from search.strategies.base import StepDetails, register_strategy
from search.strategies.latency_aware import LatencyAware


@register_strategy("proxyless")
class ProxylessStrategy(LatencyAware):
    """Binarised paths: two candidates sampled per layer and architecture step, gates with
    straight-through gradients to their renormalised probabilities; weights trained on one
    sampled path. Latency as a multiplicative (CE · (E/B)^β, the default) or additive
    (CE + λ · E/B, the paper's, one-sided) penalty.

    | option | default | meaning |
    |---|---|---|
    | `penalty` | mul | `add`: the paper's CE + λ · E/B |
    | `beta`, `beta_below` | 0.6, −0.6 | the multiplicative penalty's exponent above and under the budget |
    | `lam` | 0.1 | λ of the additive penalty |
    | `latency_step` | mirror | `adam`: the penalty in the loss Adam steps on (the paper's) |
    | `latency_lr` | 0.3 | the mirror step's rate η |
    | `derive` | budget | `argmax`: the paper's argmax |
    | `min_budget_share` | 0.9 | the derive's floor, a share of the budget |

    As fbnet here: one exponent per side of the budget, so the penalty pulls towards the budget
    rather than towards the cheapest network; the penalty is a mirror step on the logits after
    Adam's step on the cross-entropy (α ← α − η·β·cost/E[lat]; with `penalty=add`
    α ← α − η·λ·cost/B), so each choice moves by its cost, not by Adam's per-parameter scale;
    and the result is the most likely architecture within the budget and above
    `min_budget_share` of it (docs/strategies.md)."""

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
        # with the mirror step the penalty is a step of its own (after_architecture_step)
        step_loss = task if self.mirror_step else loss
        return step_loss, StepDetails(loss.item(), task.item(), expected, penalty.item())
