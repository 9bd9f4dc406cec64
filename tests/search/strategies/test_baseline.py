"""The baselines' candidates trained together by an installed trainer (as the Ray executor
trains them: elsewhere, in any order) give the search the one-at-a-time loop gives: the same
trials, accuracies, chosen architecture and child."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lut.store import LutStore
from search.request import SearchRequest, SearchSettings
from search.run import run_search
from search.strategies.baseline import CandidateBatch, candidates_trained_by, train_candidate
from tests.search.conftest import SPACE


def _request(strategy: str, trials: int) -> SearchRequest:
    return SearchRequest(
        space=SPACE,
        dataset="mnist5k",
        devices=("synthetic",),
        budgets_ms=(None,),
        settings=SearchSettings(strategy=strategy, epochs=1, batch_size=64, seed=5),
        child_epochs=1,
        trials=trials,
    )


def _backwards(batches: list[int]) -> Any:
    """A trainer that trains a batch last candidate first, in this process, leaving the global
    RNG as it found it (as a trainer in other processes does)."""

    def train(batch: CandidateBatch) -> list[tuple[float, dict[str, Any]]]:
        batches.append(len(batch.choices))
        saved = torch.get_rng_state()
        pairs = list(zip(batch.choices, batch.init_states, strict=True))
        accuracies = [
            train_candidate(
                batch.space,
                choices,
                batch.train,
                batch.val,
                seed=batch.seed,
                batch_size=batch.batch_size,
                init_state=state,
            )
            for choices, state in reversed(pairs)
        ]
        torch.set_rng_state(saved)
        return [(accuracy, {"where": "elsewhere"}) for accuracy in reversed(accuracies)]

    return train


def _search(
    strategy: str, trials: int, store: LutStore, data: Any, out: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    metrics = run_search(_request(strategy, trials), store, out, data=data, on_event=events.append)
    trials_seen = [e for e in events if e["type"] == "trial"]
    return metrics, trials_seen


@pytest.mark.parametrize(
    ("strategy", "trials", "together"), [("random", 3, 3), ("evolution", 5, 4)]
)
def test_candidates_trained_together_give_the_one_at_a_time_search(
    strategy: str, trials: int, together: int, store: LutStore, small_data: Any, tmp_path: Path
) -> None:
    alone, alone_trials = _search(strategy, trials, store, small_data, tmp_path / "alone")
    batches: list[int] = []
    with candidates_trained_by(_backwards(batches)):
        metrics, trials_seen = _search(strategy, trials, store, small_data, tmp_path / "together")
    assert batches == [together] + [1] * (trials - together)  # evolution: one trial at a time
    assert [e.pop("where") for e in trials_seen] == ["elsewhere"] * trials
    assert trials_seen == alone_trials
    assert len({e["accuracy"] for e in trials_seen}) > 1  # distinct candidates, really trained
    for key in ("arch", "val_accuracy", "test_accuracy"):
        assert metrics[key] == alone[key], key
