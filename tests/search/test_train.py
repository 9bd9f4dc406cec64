"""A child's training with a checkpoint: interrupted after an epoch and run again, it goes on
from that epoch to the weights and accuracy of an uninterrupted run; a checkpoint of another
model or settings is not used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from search.spaces.base import SearchSpace
from search.train import TrainResult, train_child
from tests.search.conftest import SPACE

EPOCHS = 3


class Interrupted(Exception):
    pass


def _model(space: SearchSpace, choice: int = 0) -> torch.nn.Module:
    torch.manual_seed(0)
    return space.build(space.architecture([slot.candidates[choice] for slot in space.layers]))


def _train(
    model: torch.nn.Module, data: Any, checkpoint: Path | None, events: list[dict[str, Any]]
) -> TrainResult:
    return train_child(
        model,
        data.train,
        data.val,
        epochs=EPOCHS,
        seed=1,
        batch_size=64,
        test=data.test,
        on_event=events.append,
        checkpoint=checkpoint,
    )


def _stop_after(epoch: int, events: list[dict[str, Any]]) -> Any:
    def on_event(event: dict[str, Any]) -> None:
        events.append(event)
        if event.get("epoch") == epoch and event["type"] == "train":
            raise Interrupted

    return on_event


@pytest.fixture(scope="module")
def space(small_data: Any) -> SearchSpace:
    from search.run import bind_space

    return bind_space(SPACE, small_data)


def test_an_interrupted_training_resumes_after_its_last_epoch(
    space: SearchSpace, small_data: Any, tmp_path: Path
) -> None:
    whole = _model(space)
    reference = _train(whole, small_data, None, [])
    checkpoint = tmp_path / "child-checkpoint.pt"
    first: list[dict[str, Any]] = []
    with pytest.raises(Interrupted):
        train_child(
            _model(space),
            small_data.train,
            small_data.val,
            epochs=EPOCHS,
            seed=1,
            batch_size=64,
            test=small_data.test,
            on_event=_stop_after(2, first),
            checkpoint=checkpoint,
        )
    events: list[dict[str, Any]] = []
    resumed_model = _model(space)
    resumed = _train(resumed_model, small_data, checkpoint, events)
    assert events[0] == {"type": "resumed", "phase": "child", "epoch": 2, "step": 2 * 4}
    assert [e["epoch"] for e in events if e["type"] == "train"] == [3]  # only the third again
    assert (resumed.val_accuracy, resumed.test_accuracy) == (
        reference.val_accuracy,
        reference.test_accuracy,
    )
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed_model.state_dict()[name]), name


def test_a_checkpoint_of_another_training_is_not_resumed(
    space: SearchSpace, small_data: Any, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "child-checkpoint.pt"
    _train(_model(space, choice=1), small_data, checkpoint, [])  # another architecture
    events: list[dict[str, Any]] = []
    result = _train(_model(space), small_data, checkpoint, events)
    assert not [e for e in events if e["type"] == "resumed"]
    assert [e["epoch"] for e in events if e["type"] == "train"] == [1, 2, 3]
    assert result.val_accuracy == _train(_model(space), small_data, None, []).val_accuracy
    checkpoint.write_bytes(b"torn")  # an unreadable one is trained over, too
    assert _train(_model(space), small_data, checkpoint, []).val_accuracy == result.val_accuracy


def test_a_search_s_child_resumes_from_its_run_folder(
    store: Any, small_data: Any, tmp_path: Path
) -> None:
    """A search stopped after its child's first epoch, run again into the same folder, trains
    only the second, ends as the uninterrupted one, and leaves no checkpoint behind."""
    from search.request import SearchRequest, SearchSettings
    from search.run import run_search
    from search.train import CHILD_CHECKPOINT

    request = SearchRequest(
        space=SPACE,
        dataset="mnist5k",
        devices=("synthetic",),
        budgets_ms=(None,),
        settings=SearchSettings(strategy="random", epochs=1, batch_size=64, seed=2),
        child_epochs=2,
        trials=1,
    )
    whole = run_search(request, store, tmp_path / "whole", data=small_data)
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted):
        run_search(request, store, cut, data=small_data, on_event=_stop_after(1, []))
    assert (cut / CHILD_CHECKPOINT).exists()
    events: list[dict[str, Any]] = []
    again = run_search(request, store, cut, data=small_data, on_event=events.append)
    assert {"type": "resumed", "phase": "child", "epoch": 1, "step": 4} in events
    assert [e["epoch"] for e in events if e["type"] == "train"] == [2]
    assert (again["val_accuracy"], again["test_accuracy"]) == (
        whole["val_accuracy"],
        whole["test_accuracy"],
    )
    assert not (cut / CHILD_CHECKPOINT).exists()
