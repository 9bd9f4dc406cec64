"""A baseline's candidates as Ray tasks, installed by the Ray executor around each unit: the
training and validation splits go into Ray's object store once per batch (the tasks' arguments
hold a reference, the candidate's choices and its RNG state), every candidate is a task of its
own, retried like the units. A candidate declares the unit's CPUs only: a unit waiting on its
candidates gives Ray its CPUs back but keeps its GPUs and memory, so candidates asking for those
too could wait for ever on the units that wait on them."""

from __future__ import annotations

import os
import socket
from typing import Any

import ray
import torch
from torch.utils.data import TensorDataset

from search.spaces.base import SearchSpace
from search.strategies.baseline import CandidateBatch, CandidateTrainer, train_candidate


def ray_trainer(cpus: float, max_retries: int) -> CandidateTrainer:
    """Trains a batch's candidates side by side as tasks of `cpus` CPUs each."""

    def train(batch: CandidateBatch) -> list[tuple[float, dict[str, Any]]]:
        splits = ray.put((batch.train, batch.val))
        task = ray.remote(_train_one).options(num_cpus=cpus, max_retries=max_retries)
        refs = [
            task.remote(splits, batch.space, choices, state, batch.seed, batch.batch_size)
            for choices, state in zip(batch.choices, batch.init_states, strict=True)
        ]
        return list(ray.get(refs))

    return train


def _train_one(
    splits: tuple[TensorDataset, TensorDataset],
    space: SearchSpace,
    choices: list[int],
    init_state: torch.Tensor,
    seed: int,
    batch_size: int,
) -> tuple[float, dict[str, Any]]:
    train, val = splits
    accuracy = train_candidate(
        space, choices, train, val, seed=seed, batch_size=batch_size, init_state=init_state
    )
    return accuracy, {"host": socket.gethostname(), "pid": os.getpid()}
