"""The Gumbel-softmax relaxation the differentiable strategies share: noisy weights per layer,
the annealed temperature, and the supernet's forward pass under a `relaxation` option."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from search.strategies.base import SearchStrategy


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


RELAXATIONS = ("soft", "hard")


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
