"""A baseline's candidates as Ray tasks, installed by the Ray executor around each unit: the
training and validation splits go into Ray's object store once per batch (the tasks' arguments
hold a reference, the candidate's choices and its RNG state), every candidate of a batch is a
task of its own, retried like the units; a lone candidate (each later trial of evolution) trains
in the unit's process. Each result is appended to `candidates.jsonl` in the unit's folder as it
comes, so a retried unit trains again only the candidates that had not finished.

A candidate declares the unit's CPUs only: a unit waiting on its candidates gives Ray its CPUs
back but keeps its GPUs and memory, so candidates asking for those too could wait for ever on
the units that wait on them."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import ray
import torch
from torch.utils.data import TensorDataset

from search.spaces.base import SearchSpace
from search.strategies.baseline import CandidateBatch, CandidateTrainer, train_candidate

RECORD = "candidates.jsonl"
Trained = tuple[float, dict[str, Any]]  # (validation accuracy, where it trained)


def ray_trainer(cpus: float, max_retries: int, folder: Path) -> CandidateTrainer:
    """Trains a batch's candidates side by side as tasks of `cpus` CPUs each, those recorded
    in `folder` by an earlier attempt of the unit excepted."""

    def train(batch: CandidateBatch) -> list[Trained]:
        keys = [_key(batch, i) for i in range(len(batch.choices))]
        known = read_record(folder / RECORD)
        results = {i: (known[k], {"recorded": True}) for i, k in enumerate(keys) if k in known}
        missing = [i for i in range(len(keys)) if i not in results]
        if len(missing) == 1:
            results[missing[0]] = (_train_here(batch, missing[0]), {})
            _append(folder / RECORD, keys[missing[0]], results[missing[0]][0])
        elif missing:
            for i, trained in _train_as_tasks(batch, missing, cpus, max_retries):
                results[i] = trained
                _append(folder / RECORD, keys[i], trained[0])
        return [results[i] for i in range(len(keys))]

    return train


def _train_as_tasks(
    batch: CandidateBatch, indices: list[int], cpus: float, max_retries: int
) -> list[tuple[int, Trained]]:
    """(index, result) of each candidate of `indices`, in the order they finish."""
    splits = ray.put((batch.train, batch.val))
    task = ray.remote(_train_one).options(num_cpus=cpus, max_retries=max_retries)
    refs = {
        task.remote(
            splits,
            batch.space,
            batch.choices[i],
            batch.init_states[i],
            batch.seed,
            batch.batch_size,
        ): i
        for i in indices
    }
    finished: list[tuple[int, Trained]] = []
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        finished.extend((refs[ref], ray.get(ref)) for ref in done)
    return finished


def _train_here(batch: CandidateBatch, i: int) -> float:
    """Candidate `i` in this process, the global RNG left as it was."""
    saved = torch.get_rng_state()
    try:
        return train_candidate(
            batch.space,
            batch.choices[i],
            batch.train,
            batch.val,
            seed=batch.seed,
            batch_size=batch.batch_size,
            init_state=batch.init_states[i],
        )
    finally:
        torch.set_rng_state(saved)


def _train_one(
    splits: tuple[TensorDataset, TensorDataset],
    space: SearchSpace,
    choices: list[int],
    init_state: torch.Tensor,
    seed: int,
    batch_size: int,
) -> Trained:
    train, val = splits
    accuracy = train_candidate(
        space, choices, train, val, seed=seed, batch_size=batch_size, init_state=init_state
    )
    return accuracy, {"host": socket.gethostname(), "pid": os.getpid()}


def _key(batch: CandidateBatch, i: int) -> str:
    """What makes candidate `i`'s accuracy: its choices, its initial RNG state and training."""
    state = hashlib.sha256(batch.init_states[i].numpy().tobytes()).hexdigest()[:16]
    choices = "-".join(str(c) for c in batch.choices[i])
    return f"{choices}:{state}:{batch.seed}:{batch.batch_size}"


def read_record(path: Path) -> dict[str, float]:
    """Candidate key → accuracy from `path`; a line torn by a crash is skipped."""
    if not path.exists():
        return {}
    known: dict[str, float] = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            known[str(entry["key"])] = float(entry["accuracy"])
        except (ValueError, KeyError, TypeError):
            continue
    return known


def _append(path: Path, key: str, accuracy: float) -> None:
    with path.open("a") as record:
        record.write(json.dumps({"key": key, "accuracy": accuracy}) + "\n")
