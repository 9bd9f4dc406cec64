"""KL (Bregman) projections of the per-layer architecture distributions onto a band of expected
cost, every layer at once.

The layers' logits sit side by side in one matrix, a row per layer padded with −inf (probability
0), so the expected cost of a shifted distribution softmax(α − λ·cost) is a handful of tensor
operations whatever the number of layers, instead of a Python loop per layer after every
architecture step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

BISECTION_STEPS = 60
MAX_LAMBDA = 1e12
# A bound counts as met within this relative distance: a budget at the space's smallest latency
# is reached only as λ → ∞, where the sums' rounding decides which side E lands on.
RELATIVE_TOLERANCE = 1e-9


def stack_rows(rows: Sequence[Sequence[float] | torch.Tensor], pad: float) -> torch.Tensor:
    """One row per layer, padded on the right with `pad` to the widest layer (float64)."""
    tensors = [torch.as_tensor(r, dtype=torch.float64).reshape(-1) for r in rows]
    width = max(t.numel() for t in tensors)
    out = torch.full((len(tensors), width), pad, dtype=torch.float64)
    for i, row in enumerate(tensors):
        out[i, : row.numel()] = row
    return out


def expected_cost(logits: torch.Tensor, costs: torch.Tensor, lam: float) -> float:
    """Σ_layers Σ_choices softmax(logits − λ·costs)·costs (padding: −inf logits, zero costs)."""
    return float((torch.softmax(logits - lam * costs, dim=1) * costs).sum())


def bisect_lambda(logits: torch.Tensor, costs: torch.Tensor, target: float, sign: float) -> float:
    """Smallest λ ≥ 0 with E[cost](softmax(logits − sign·λ·costs)) on the target's side: <= target
    for sign +1 (shrink), >= target for sign −1 (grow). E[cost] is monotone in λ."""

    slack = RELATIVE_TOLERANCE * abs(target)

    def beyond(lam: float) -> bool:
        value = expected_cost(logits, costs, sign * lam)
        return value > target + slack if sign > 0 else value < target - slack

    low, high = 0.0, 1.0
    while beyond(high):
        high *= 2.0
        if high > MAX_LAMBDA:
            raise ValueError("latency budget cannot be met by any distribution (infeasible)")
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        low, high = (mid, high) if beyond(mid) else (low, mid)
    return high


@torch.no_grad()
def project_onto_bands(
    alphas: Sequence[torch.Tensor],
    costs: Sequence[torch.Tensor],
    lows: Sequence[float],
    highs: Sequence[float],
    rounds: int = 20,
) -> None:
    """Cyclic KL projections of the layers' distributions onto {low_d <= E_d[cost] <= high_d}
    (within RELATIVE_TOLERANCE) for every cost matrix d (`stack_rows(..., pad=0)`), in place,
    computed in float64: each one shifts every α by
    −λ·cost_d with the λ that brings E_d onto the violated bound. A lower bound that no
    distribution can reach is left alone; an upper one raises ValueError."""
    logits = stack_rows([a.detach() for a in alphas], pad=float("-inf"))
    for _ in range(rounds):
        moved = False
        for table, low, high in zip(costs, lows, highs, strict=True):
            current = expected_cost(logits, table, 0.0)
            if current > high * (1 + RELATIVE_TOLERANCE):
                lam = bisect_lambda(logits, table, high, sign=1.0)
            elif (
                current < low * (1 - RELATIVE_TOLERANCE)
                and expected_cost(logits, table, -1e9) > low
            ):
                lam = -bisect_lambda(logits, table, low, sign=-1.0)
            else:
                continue
            moved = True
            logits -= lam * table
        if not moved:
            break
    for i, alpha in enumerate(alphas):
        alpha.copy_(logits[i, : alpha.numel()].to(alpha.dtype))
