"""The base of the baselines over the LUT (random search, aging evolution): they train stand-alone
candidates briefly and keep the one with the best validation accuracy, instead of a supernet.
Every candidate is within the budgets (sampled or mutated, then repaired by the exact knapsack
solver if it is not). Candidates known together (random search's all, evolution's first
population) can be trained elsewhere at once by an installed `CandidateTrainer` (Ray tasks),
with the results the one-at-a-time loop gets."""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import TensorDataset

from search.mckp import solve_mckp
from search.spaces.base import Architecture, SearchSpace
from search.strategies.base import Budget, Strategy
from search.train import train_child

PROXY_EPOCHS = 1  # each candidate's training: a proxy for its accuracy, not the final one
REJECTION_TRIES = 200
Emit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class CandidateBatch:
    """Candidates to train together: each one's choices and the global torch RNG state its
    weights are drawn from (the state the one-at-a-time loop would build it in), so a trainer
    in another process, or in another order, gets the same weights, and so the same accuracy.
    A trainer leaves the global RNG of the process that calls it as it found it."""

    space: SearchSpace
    choices: list[list[int]]
    init_states: list[torch.Tensor]
    train: TensorDataset
    val: TensorDataset
    seed: int
    batch_size: int


# (validation accuracy, event fields saying where it trained) of each candidate, in order
CandidateTrainer = Callable[[CandidateBatch], list[tuple[float, dict[str, Any]]]]
_TRAINER: ContextVar[CandidateTrainer | None] = ContextVar("candidate_trainer", default=None)


@contextmanager
def candidates_trained_by(trainer: CandidateTrainer) -> Iterator[None]:
    """Within the block, baselines hand candidates known together to `trainer`."""
    token = _TRAINER.set(trainer)
    try:
        yield
    finally:
        _TRAINER.reset(token)


def architecture_of(space: SearchSpace, choices: Sequence[int]) -> Architecture:
    return space.architecture(
        [slot.candidates[i] for slot, i in zip(space.layers, choices, strict=True)]
    )


def train_candidate(
    space: SearchSpace,
    choices: Sequence[int],
    train: TensorDataset,
    val: TensorDataset,
    *,
    seed: int,
    batch_size: int,
    init_state: torch.Tensor | None = None,
) -> float:
    """One candidate's validation accuracy after its proxy training; its weights drawn from the
    global RNG as it is, or from `init_state`."""
    if init_state is not None:
        torch.set_rng_state(init_state)
    model = space.build(architecture_of(space, choices))
    result = train_child(model, train, val, epochs=PROXY_EPOCHS, seed=seed, batch_size=batch_size)
    return result.val_accuracy


def within(budgets: Sequence[Budget], choices: Sequence[int]) -> bool:
    return all(b.cost_model.cost(choices) <= b.latency_ms for b in budgets)


def feasible_sample(rng: random.Random, space: SearchSpace, budgets: Sequence[Budget]) -> list[int]:
    """Uniform over the space restricted to the budgets (rejection sampling); where feasible
    architectures are rare, an exact knapsack solve with random scores (always feasible)."""
    sizes = [len(slot.candidates) for slot in space.layers]
    for _ in range(REJECTION_TRIES):
        choices = [rng.randrange(n) for n in sizes]
        if within(budgets, choices):
            return choices
    for _ in range(REJECTION_TRIES):
        scores = [[rng.random() for _ in range(n)] for n in sizes]
        primary = budgets[0]
        selection = solve_mckp(
            scores,
            primary.cost_model.layer_costs,
            primary.latency_ms - primary.cost_model.constant_ms,
        )
        if within(budgets, selection.choices):
            return list(selection.choices)
    raise ValueError("could not find an architecture within every budget")


class BaselineStrategy(Strategy):
    """Trains up to `trials` candidates of `space` (each `PROXY_EPOCHS` on the train split,
    ranked by validation accuracy; a candidate seen before is not trained again) and returns the
    best one's choices. Subclasses say which candidates (`explore`)."""

    def __init__(
        self,
        space: SearchSpace,
        budgets: Sequence[Budget],
        data: Any,
        *,
        trials: int,
        seed: int,
        batch_size: int,
        emit: Emit,
        **options: Any,
    ) -> None:
        self.space, self.budgets, self.data = space, list(budgets), data
        self.trials, self.seed, self.batch_size = max(1, trials), seed, batch_size
        self.emit = emit
        self.options = self.check_options(options)
        self.rng = random.Random(seed)
        self.seen: dict[tuple[int, ...], float] = {}

    def run(self) -> list[int]:
        self.explore()
        best: tuple[int, ...] = max(self.seen, key=self.seen.__getitem__)
        return list(best)

    @abstractmethod
    def explore(self) -> None:
        """Evaluate candidates with `fitness` (or `fitness_of`) until the trials are spent."""

    def sample(self) -> list[int]:
        return feasible_sample(self.rng, self.space, self.budgets)

    def fitness(self, choices: list[int]) -> float:
        """The candidate's validation accuracy after its proxy training (trained once)."""
        return self.fitness_of([choices])[0]

    def fitness_of(self, candidates: Sequence[list[int]]) -> list[float]:
        """Each candidate's fitness. Those not seen before are trained in order here, or, with
        a trainer installed (`candidates_trained_by`), handed to it together; either way each
        gets the weights and accuracy the one-at-a-time loop gives it."""
        new = list(dict.fromkeys(tuple(c) for c in candidates if tuple(c) not in self.seen))
        trainer = _TRAINER.get()
        if trainer is None:
            for key in new:
                self._record(key, self._train_here(key), {})
        elif new:
            batch = self._batch(new)
            for key, (accuracy, where) in zip(new, trainer(batch), strict=True):
                self._record(key, accuracy, where)
        return [self.seen[tuple(c)] for c in candidates]

    def _train_here(self, key: tuple[int, ...]) -> float:
        return train_candidate(
            self.space,
            key,
            self.data.train,
            self.data.val,
            seed=self.seed,
            batch_size=self.batch_size,
        )

    def _batch(self, keys: list[tuple[int, ...]]) -> CandidateBatch:
        """The candidates with the RNG state each is built in here, the global RNG advanced past
        them all (building each once, as training them here would), so what follows draws the
        same numbers."""
        states = []
        for key in keys:
            states.append(torch.get_rng_state())
            self.space.build(architecture_of(self.space, key))
        return CandidateBatch(
            self.space,
            [list(key) for key in keys],
            states,
            self.data.train,
            self.data.val,
            self.seed,
            self.batch_size,
        )

    def _record(self, key: tuple[int, ...], accuracy: float, where: dict[str, Any]) -> None:
        self.seen[key] = accuracy
        self.emit(
            {
                "type": "trial",
                "trial": len(self.seen),
                "trials": self.trials,
                "arch": architecture_of(self.space, key).to_string(),
                "accuracy": accuracy,
                **where,
            }
        )
