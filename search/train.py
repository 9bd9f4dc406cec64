"""Training and evaluating a stand-alone child network (and batching helpers shared with search)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from search.augment import random_shift

EventFn = Callable[[dict[str, Any]], None]  # receives progress events


def batches(
    data: TensorDataset, batch_size: int, generator: torch.Generator | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of a tensor dataset; shuffled when a generator is given."""
    images, labels = data.tensors
    count = len(labels)
    order = (
        torch.randperm(count, generator=generator) if generator is not None else torch.arange(count)
    )
    for start in range(0, count, batch_size):
        index = order[start : start + batch_size]
        yield images[index], labels[index]


def steps_per_epoch(data: TensorDataset, batch_size: int) -> int:
    return math.ceil(len(data) / batch_size)


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorDataset, batch_size: int = 512) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of `model` on `data`."""
    was_training = model.training
    model.eval()
    correct, loss, count = 0, 0.0, 0
    for images, labels in batches(data, batch_size, None):
        logits = model(images)
        loss += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(1) == labels).sum())
        count += len(labels)
    model.train(was_training)
    return correct / max(count, 1), loss / max(count, 1)


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, data: TensorDataset, batch_size: int, max_batches: int = 20
) -> None:
    """Re-estimate BatchNorm statistics as an exact average over up to `max_batches` training
    batches. After a short training run the running averages (momentum 0.1) are far from the
    weights' true statistics and evaluation collapses to chance; NAS proxies (SPOS, OFA) do this."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    for i, (images, _) in enumerate(batches(data, batch_size, torch.Generator().manual_seed(0))):
        if i >= max_batches:
            break
        model(images)
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum


@dataclass(frozen=True)
class TrainResult:
    val_accuracy: float
    test_accuracy: float | None
    epochs: int
    wall_s: float


def train_child(
    model: nn.Module,
    train: TensorDataset,
    val: TensorDataset,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 128,
    lr: float = 0.05,
    weight_decay: float = 4e-5,
    test: TensorDataset | None = None,
    on_event: EventFn | None = None,
    shift_px: int = 0,
) -> TrainResult:
    """SGD with Nesterov momentum and a cosine schedule; evaluates on `val` after each epoch.
    `shift_px` > 0 translates every training image by a random offset of up to that many pixels
    (seeded by `seed`)."""
    start = time.perf_counter()
    model.train()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
    )
    total = max(1, epochs * steps_per_epoch(train, batch_size))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
    val_accuracy = 0.0
    for epoch in range(epochs):
        for images, labels in batches(train, batch_size, generator):
            images = random_shift(images, shift_px, generator)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        recalibrate_batchnorm(model, train, batch_size)
        val_accuracy, val_loss = evaluate(model, val)
        if on_event:
            on_event(
                {
                    "type": "train",
                    "epoch": epoch + 1,
                    "epochs": epochs,
                    "loss": loss.item(),
                    "val_loss": val_loss,
                    "accuracy": val_accuracy,
                }
            )
    test_accuracy = evaluate(model, test)[0] if test is not None else None
    model.eval()
    return TrainResult(val_accuracy, test_accuracy, epochs, time.perf_counter() - start)
