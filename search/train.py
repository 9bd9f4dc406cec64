"""Training and evaluating a stand-alone child network (and batching helpers shared with search)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from common.files import write_atomically
from search.augment import random_shift

EventFn = Callable[[dict[str, Any]], None]  # receives progress events
CHILD_CHECKPOINT = "child-checkpoint.pt"  # a run folder's child training, while it trains


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
    checkpoint: Path | None = None,
) -> TrainResult:
    """SGD with Nesterov momentum and a cosine schedule; evaluates on `val` after each epoch.
    `shift_px` > 0 translates every training image by a random offset of up to that many pixels
    (seeded by `seed`). With `checkpoint`, the training's state is written there after each
    epoch, and a run that finds one of the same model and settings goes on after its last
    epoch, to the result an uninterrupted run has (a `resumed` event says from which)."""
    start = time.perf_counter()
    model.train()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
    )
    total = max(1, epochs * steps_per_epoch(train, batch_size))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    key = _checkpoint_key(model, train, epochs, seed, batch_size, lr, weight_decay, shift_px)
    first, val_accuracy = _resume_child(checkpoint, key, state, generator)
    if first and on_event:
        step = first * steps_per_epoch(train, batch_size)
        on_event({"type": "resumed", "phase": "child", "epoch": first, "step": step})
    for epoch in range(first, epochs):
        for images, labels in batches(train, batch_size, generator):
            images = random_shift(images, shift_px, generator)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        recalibrate_batchnorm(model, train, batch_size)
        val_accuracy, val_loss = evaluate(model, val)
        if checkpoint is not None:
            _save_child(checkpoint, key, state, generator, epoch + 1, val_accuracy)
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


def _checkpoint_key(model: nn.Module, train: TensorDataset, *settings: Any) -> list[Any]:
    """What a child checkpoint must match to be resumed: the model's tensors' names and shapes,
    the training split's size and the training's settings."""
    shapes = [[name, list(tensor.shape)] for name, tensor in model.state_dict().items()]
    return [shapes, len(train), *settings]


def _save_child(
    path: Path,
    key: list[Any],
    state: dict[str, Any],
    generator: torch.Generator,
    epochs_done: int,
    val_accuracy: float,
) -> None:
    payload = {name: part.state_dict() for name, part in state.items()}
    payload.update(
        key=key, generator=generator.get_state(), epochs_done=epochs_done, val=val_accuracy
    )
    write_atomically(path, lambda tmp: torch.save(payload, tmp))


def _resume_child(
    path: Path | None, key: list[Any], state: dict[str, Any], generator: torch.Generator
) -> tuple[int, float]:
    """(epochs already done, their last validation accuracy) from the checkpoint at `path`,
    its states loaded into `state` and `generator`; (0, 0.0) when there is none of this
    training (missing, unreadable, or of another model or settings)."""
    if path is None or not path.exists():
        return 0, 0.0
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return 0, 0.0
    if payload.get("key") != key:
        return 0, 0.0
    for name, part in state.items():
        part.load_state_dict(payload[name])
    generator.set_state(payload["generator"])
    return int(payload["epochs_done"]), float(payload["val"])
