"""The sandwich rule with in-place distillation (BigNAS, Once-for-All, AttentiveNAS): one weight
step trains the space's largest path on the labels and the smallest and sampled paths on the
largest path's detached soft outputs, with one optimiser step over the summed gradients.

Training the two ends every step keeps the shared weights good for the whole range, not only
where the sampler spends its steps; the largest path's soft labels give every smaller path one
consistent target, which in-place distillation credits with keeping the supernet's ranking of
sub-networks close to their stand-alone ranking. The largest and smallest paths are each layer's
dearest and cheapest candidate by the primary device's LUT, so the step draws no random numbers
beyond the sampler's: a resumed phase repeats the uninterrupted one exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from search.cost import LatencyCostModel
from search.supernet import Supernet


def extreme_paths(model: LatencyCostModel) -> tuple[list[int], list[int]]:
    """(largest, smallest): each layer's most and least expensive candidate (the first of equals)."""
    largest = [costs.index(max(costs)) for costs in model.layer_costs]
    smallest = [costs.index(min(costs)) for costs in model.layer_costs]
    return largest, smallest


def distillation_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """Soft cross-entropy −Σ p_teacher · log p_student, averaged over the batch (KL divergence
    plus the teacher's entropy, a constant: the same gradient)."""
    return -(teacher_probs * F.log_softmax(student_logits, dim=1)).sum(1).mean()


def sandwich_step(
    supernet: Supernet,
    images: torch.Tensor,
    labels: torch.Tensor,
    teacher: Sequence[int],
    students: Sequence[Sequence[int]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Accumulate the gradients of one sandwich step (the caller zeroes them before and steps
    the optimiser after): cross-entropy of the `teacher` path on the labels, then each of
    `students` distilled from its detached soft outputs, one backward pass each so only one
    path's activations are held at a time. Returns the teacher's loss and logits."""
    logits = supernet(images, list(teacher))
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    soft_targets = F.softmax(logits.detach(), dim=1)
    for path in students:
        distillation_loss(supernet(images, list(path)), soft_targets).backward()
    return loss.detach(), logits.detach()
