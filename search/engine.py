"""The search loop: bilevel optimisation of a supernet (weights on the train split, architecture
on the validation split) under a strategy, with checkpoints and progress events."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from search.checkpoint import load_checkpoint, save_checkpoint
from search.request import SearchSettings
from search.strategies.base import Budget, SearchStrategy, get_search_strategy
from search.supernet import Supernet
from search.train import EventFn, steps_per_epoch


def seeded_batch(
    data: Any, settings: SearchSettings, epoch: int, index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch `index` of the epoch's seeded permutation (`index` wraps for the smaller split),
    so a resumed search sees exactly the batches the uninterrupted one would."""
    images, labels = data.tensors
    order = torch.randperm(
        len(labels), generator=torch.Generator().manual_seed(settings.seed * 100003 + epoch)
    )
    count = steps_per_epoch(data, settings.batch_size)
    start = (index % count) * settings.batch_size
    pick = order[start : start + settings.batch_size]
    return images[pick], labels[pick]


def alpha_gradients(params: Sequence[torch.Tensor], loss: torch.Tensor) -> None:
    """Gradients of the architecture parameters only: `backward()` would also compute every
    supernet weight's (the step discards them), about half the step's time with a dense
    forward pass."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    for param, grad in zip(params, grads, strict=True):
        param.grad = grad


def history_line(step: int, expected_latency_ms: dict[str, float], supernet: Supernet) -> str:
    """One line of history.jsonl: the step, the expected latency and every probability."""
    probs = [[round(float(v), 5) for v in p.detach()] for p in supernet.probabilities()]
    record = {"step": step, "expected_latency_ms": expected_latency_ms, "probabilities": probs}
    return json.dumps(record) + "\n"


def truncate_history(path: Path, step: int) -> None:
    """Drop history lines written after a checkpoint at `step`: they will be written again."""
    if not path.exists():
        return
    kept = [ln for ln in path.read_text().splitlines() if json.loads(ln)["step"] < step]
    path.write_text("".join(f"{ln}\n" for ln in kept))


@dataclass
class SupernetSearch:
    """One differentiable search; `run()` resumes from `out_dir`'s checkpoint if there is one."""

    supernet: Supernet
    strategy: SearchStrategy
    settings: SearchSettings
    train: Any
    val: Any
    out_dir: Path
    lut_version: str
    on_event: EventFn | None = None

    def __post_init__(self) -> None:
        self.weight_opt = torch.optim.SGD(
            self.supernet.weight_parameters(),
            lr=self.settings.weight_lr,
            momentum=0.9,
            nesterov=True,
            weight_decay=4e-5,
        )
        arch_lr = self.settings.arch_lr or self.strategy.default_arch_lr
        self.arch_opt = torch.optim.Adam(
            self.supernet.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999)
        )
        self.generator = torch.Generator().manual_seed(self.settings.seed + 1)
        self.step = 0
        self.steps_per_epoch = steps_per_epoch(self.train, self.settings.batch_size)

    @classmethod
    def create(
        cls, supernet: Supernet, budgets: Sequence[Budget], settings: SearchSettings, **kwargs: Any
    ) -> SupernetSearch:
        strategy_class = get_search_strategy(settings.strategy)
        strategy = strategy_class(supernet, budgets, **settings.strategy_options)
        return cls(supernet, strategy, settings, **kwargs)

    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_event:
            self.on_event(event)

    def run(self) -> list[int]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._resume()
        history = (self.out_dir / "history.jsonl").open("a")
        total = self.settings.epochs * self.steps_per_epoch
        try:
            while self.step < total:
                self._one_step(history)
                if self.step % self.settings.checkpoint_every == 0 or self.step == total:
                    history.flush()
                    self.checkpoint()
        finally:
            history.close()
        return self.strategy.derive()

    def _one_step(self, history: Any) -> None:
        epoch, index = divmod(self.step, self.steps_per_epoch)
        self.strategy.on_epoch_start(epoch, self.settings.epochs)
        images, labels = self._batch(self.train, epoch, index)
        modes = self.strategy.weight_modes(self.generator)
        logits = self.supernet(images, modes)
        loss = F.cross_entropy(logits, labels)
        self.weight_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.weight_opt.step()
        accuracy = float((logits.argmax(1) == labels).float().mean())
        details = None
        if epoch >= self.settings.warmup:
            val_images, val_labels = self._batch(self.val, epoch, index)
            arch_loss, details = self.strategy.architecture_loss(
                val_images, val_labels, self.generator
            )
            self._architecture_gradients(arch_loss)
            self.arch_opt.step()
            self.strategy.after_architecture_step()
            history.write(history_line(self.step, details.expected_latency_ms, self.supernet))
        self.step += 1
        if self.step % 10 == 0 or index == self.steps_per_epoch - 1:
            expected = {d: float(v.detach()) for d, v in self.strategy.expected_latencies().items()}
            self._emit(
                {
                    "type": "search",
                    "epoch": epoch + 1,
                    "epochs": self.settings.epochs,
                    "step": self.step,
                    "steps": self.settings.epochs * self.steps_per_epoch,
                    "loss": loss.item(),
                    "accuracy": accuracy,
                    "expected_latency_ms": expected,
                    "arch_loss": details.loss if details else None,
                    **self.strategy.describe(),
                }
            )

    def _architecture_gradients(self, arch_loss: torch.Tensor) -> None:
        alpha_gradients([p for g in self.arch_opt.param_groups for p in g["params"]], arch_loss)

    def _batch(self, data: Any, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return seeded_batch(data, self.settings, epoch, index)

    def checkpoint(self) -> None:
        save_checkpoint(
            self.out_dir,
            {
                "supernet": self.supernet.state_dict(),
                "weight_optimizer": self.weight_opt.state_dict(),
                "arch_optimizer": self.arch_opt.state_dict(),
                "generator": self.generator.get_state(),
                "step": self.step,
                "strategy": self.strategy.state(),
                "strategy_name": self.strategy.name,
                "lut_version": self.lut_version,
                "saved_at": time.time(),
            },
        )

    def _resume(self) -> None:
        payload = load_checkpoint(self.out_dir)
        if payload is None:
            return
        if payload["strategy_name"] != self.strategy.name:
            raise ValueError(
                f"{self.out_dir} holds a {payload['strategy_name']!r} search, not {self.strategy.name!r}"
            )
        if payload["lut_version"] != self.lut_version:
            raise ValueError(
                f"{self.out_dir}'s checkpoint was made with another LUT version; start a new run"
            )
        self.supernet.load_state_dict(payload["supernet"])
        self.weight_opt.load_state_dict(payload["weight_optimizer"])
        self.arch_opt.load_state_dict(payload["arch_optimizer"])
        self.generator.set_state(payload["generator"])
        self.strategy.load_state(payload["strategy"])
        self.step = int(payload["step"])
        truncate_history(self.out_dir / "history.jsonl", self.step)
        self._emit({"type": "resumed", "step": self.step})
