"""How well the shared weights serve a derived network: its accuracy with the supernet's weights.

A weight-sharing search ranks paths by how they do with the shared weights. Where those weights
have not learned the paths a budget leaves (too few weight steps, or candidates that share no
kernels, so that nearly every path crosses weights trained on something else), every such path
scores near chance and the architecture phase chooses among paths it cannot tell apart: the
result is no better informed than a random network under the same budget. The derived
network's inherited validation accuracy says which case a search is in, at the cost of one
validation pass, and a search that ran on unlearned weights says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from search.spaces.base import SearchSpace
from search.supernet import Supernet
from search.train import evaluate, recalibrate_batchnorm

# The inherited accuracy must close at least this share of the gap from chance to 100%.
LEARNED_SHARE = 0.1


def inherited_accuracy(
    supernet: Supernet,
    space: SearchSpace,
    choices: Sequence[int],
    data: Any,
    split: str = "val",
    batch_size: int = 128,
) -> float:
    """`choices`' accuracy on `data`'s `split` with the supernet's weights, its BatchNorm
    statistics re-estimated on training batches (the running averages of a path trained a
    fraction of the steps mean nothing). The supernet and the global RNG are left as found."""
    arch = space.architecture(
        [slot.candidates[i] for slot, i in zip(space.layers, choices, strict=True)]
    )
    with torch.random.fork_rng(devices=[]):  # building draws initial weights
        child = space.build(arch)
    child.load_state_dict(supernet.child_state_dict(choices))  # a copy: the supernet is untouched
    recalibrate_batchnorm(child, data.train, batch_size)
    return evaluate(child, getattr(data, split))[0]


def chance_accuracy(labels: torch.Tensor) -> float:
    """The accuracy of always answering the most frequent class of `labels`."""
    return float(torch.bincount(labels).max()) / max(len(labels), 1)


def unlearned_warning(accuracy: float, chance: float) -> str | None:
    """A warning for a derived network whose inherited accuracy is barely above chance, or
    None."""
    if chance >= 1.0 or (accuracy - chance) / (1.0 - chance) >= LEARNED_SHARE:
        return None
    return (
        f"the shared weights have not learned the derived network: it scores "
        f"{accuracy:.1%} on the validation split with them (chance {chance:.1%}), so the "
        "search chose among networks it could not tell apart; train the weights longer "
        "(--epochs), or use a space whose candidates share kernels (proxyless-tiny, mbv3-tiny)"
    )
