"""A retried baseline unit's candidates: those an earlier attempt recorded in the unit's folder
are not trained again; a lone one trains in the unit's process with the RNG state it was given,
leaving the process's own as it was. (No cluster: these paths make no Ray call; the tasks
themselves are tested on a real cluster in test_ray_executor.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from search.data import load_dataset
from search.run import bind_space
from search.strategies.baseline import CandidateBatch, train_candidate
from service.worker.executors import ray_candidates
from tests.service.fixtures import write_npz


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> CandidateBatch:
    data = load_dataset(str(write_npz(tmp_path_factory.mktemp("data") / "squares.npz")))
    space = bind_space("fbnet-tiny", data)
    choices = [[0] * len(space.layers), [1] * len(space.layers)]
    torch.manual_seed(3)
    states = [torch.get_rng_state(), torch.manual_seed(4).get_state()]
    return CandidateBatch(space, choices, states, data.train, data.val, seed=0, batch_size=32)


def _trained_alone(batch: CandidateBatch, i: int) -> float:
    return train_candidate(
        batch.space,
        batch.choices[i],
        batch.train,
        batch.val,
        seed=batch.seed,
        batch_size=batch.batch_size,
        init_state=batch.init_states[i],
    )


def test_recorded_candidates_are_not_trained_again(batch: CandidateBatch, tmp_path: Path) -> None:
    record = tmp_path / ray_candidates.RECORD
    keys = [ray_candidates._key(batch, i) for i in range(2)]
    record.write_text(
        "".join(f'{{"key": "{key}", "accuracy": {0.25 * (i + 1)}}}\n' for i, key in enumerate(keys))
        + '{"key": "torn'  # a line the crash cut short
    )
    train = ray_candidates.ray_trainer(1.0, 0, tmp_path)
    assert train(batch) == [(0.25, {"recorded": True}), (0.5, {"recorded": True})]


def test_the_one_candidate_left_trains_here_and_is_recorded(
    batch: CandidateBatch, tmp_path: Path
) -> None:
    record = tmp_path / ray_candidates.RECORD
    record.write_text(f'{{"key": "{ray_candidates._key(batch, 0)}", "accuracy": 0.25}}\n')
    torch.manual_seed(11)
    before = torch.get_rng_state()
    results: list[Any] = ray_candidates.ray_trainer(1.0, 0, tmp_path)(batch)
    assert torch.equal(torch.get_rng_state(), before)
    expected = _trained_alone(batch, 1)
    assert results == [(0.25, {"recorded": True}), (expected, {})]
    assert ray_candidates.read_record(record)[ray_candidates._key(batch, 1)] == expected
