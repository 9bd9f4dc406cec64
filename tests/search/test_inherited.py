"""The derived network's accuracy with the shared weights, and the warning when the weights have
not learned it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from lut.store import LutStore
from search.inherited import chance_accuracy, inherited_accuracy, unlearned_warning
from search.request import SearchRequest, SearchSettings
from search.run import bind_space, run_search
from search.supernet import Supernet
from search.train import evaluate, recalibrate_batchnorm
from tests.search.test_run import _budget

SPACE = "fbnet-tiny"


def test_chance_is_the_most_frequent_class_share() -> None:
    assert chance_accuracy(torch.tensor([0, 1, 2, 2])) == 0.5
    assert chance_accuracy(torch.arange(10)) == pytest.approx(0.1)


def test_the_warning_fires_below_a_tenth_of_the_way_from_chance_to_perfect() -> None:
    message = unlearned_warning(0.112, 0.1)
    assert message is not None and "11.2%" in message and "chance 10.0%" in message
    assert unlearned_warning(0.18, 0.1) is not None  # 0.089 of the way
    assert unlearned_warning(0.20, 0.1) is None
    assert unlearned_warning(0.54, 0.5) is not None  # two classes: 0.04 of 0.5
    assert unlearned_warning(0.60, 0.5) is None
    assert unlearned_warning(1.0, 1.0) is None  # one class in the split: nothing to learn


def test_inherited_accuracy_is_the_childs_and_leaves_supernet_and_rng_alone(
    small_data: Any,
) -> None:
    space = bind_space(SPACE, small_data)
    torch.manual_seed(0)
    supernet = Supernet(space)
    choices = [len(slot.candidates) // 2 for slot in space.layers]
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    rng = torch.get_rng_state()

    accuracy = inherited_accuracy(supernet, space, choices, small_data)

    assert torch.equal(torch.get_rng_state(), rng)
    after = supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    arch = space.architecture([s.candidates[i] for s, i in zip(space.layers, choices, strict=True)])
    child = space.build(arch)
    child.load_state_dict(supernet.child_state_dict(choices))
    recalibrate_batchnorm(child, small_data.train, 128)
    assert accuracy == evaluate(child, small_data.val)[0]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["hardcore", "random"])
def test_a_search_records_the_inherited_accuracy_and_warns_where_it_is_near_chance(
    strategy: str, store: LutStore, small_data: Any, tmp_path: Path
) -> None:
    """One weight epoch on 256 images: whether the weights learned the result or not, the
    metrics and the events agree with the rule; a baseline has no shared weights to judge."""
    request = SearchRequest(
        space=SPACE,
        dataset="mnist5k",
        devices=("synthetic",),
        budgets_ms=(_budget(store, 0.4),),
        settings=SearchSettings(strategy=strategy, epochs=1, batch_size=64, seed=3),
        child_epochs=1,
        trials=2,
    )
    events: list[dict[str, Any]] = []
    metrics = run_search(request, store, tmp_path, data=small_data, on_event=events.append)
    warnings = [e["message"] for e in events if e.get("type") == "warning"]
    if strategy == "random":
        assert metrics["inherited_val_accuracy"] is None and not warnings
        return
    accuracy = metrics["inherited_val_accuracy"]
    assert 0.0 <= accuracy <= 1.0
    expected = unlearned_warning(accuracy, chance_accuracy(small_data.val.tensors[1]))
    assert warnings == ([] if expected is None else [expected])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["inherited_val_accuracy"] == accuracy


def test_the_cli_prints_a_warning_event_with_its_budget(capsys: pytest.CaptureFixture) -> None:
    from service.cli.search import _progress_handler

    handle = _progress_handler(None, None, io.StringIO())
    handle({"type": "warning", "message": "the [weights] are unlearned", "budget_ms": 0.2})
    assert "warning (budget 0.2 ms): the [weights] are unlearned" in capsys.readouterr().err
