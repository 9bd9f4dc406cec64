"""The exact SRAM check's loop: where the file's arena exceeds the budget although the composed
estimate fits (TFLM's whole-network plan fragmenting), the strategy derives again under the
budget less the excess until the file fits; a derive that ignores budgets is reported, and a
budget no derive can meet is refused. The file's arena here is a stand-in with a known excess
(the real conversion and planner: tests/profilers/mcu/test_memory_search.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch

from search.exact_sram import ExactSram
from search.memory_budgets import KIB, sram_budget
from search.strategies.base import SearchStrategy, StepDetails
from search.strategies.knapsack_derive import most_likely_within
from tests.search.memory_fixtures import MEMORY, composed

LOG_PROBS = [[-0.5, -0.1, -3.0], [-3.0, -0.1, -0.5]]  # prefers the larger blocks


class KnapsackOnly(SearchStrategy):
    """Derives the most likely choices within its budgets (what hardcore's derive does)."""

    name = "knapsack-only"

    def __init__(self, budgets: list[Any], argmax: bool = False) -> None:
        self.budgets, self.argmax = list(budgets), argmax

    def architecture_loss(self, *args: Any) -> tuple[torch.Tensor, StepDetails]:
        raise NotImplementedError

    def derive(self) -> list[int]:
        if self.argmax:
            return [max(range(3), key=row.__getitem__) for row in LOG_PROBS]
        return most_likely_within(LOG_PROBS, self.budgets, [b.latency_ms for b in self.budgets])


class FragmentingFile(ExactSram):
    """The file's arena: the composed one, 9 KiB more for architectures above 65 KiB."""

    def arena_bytes(self, choices: Sequence[int]) -> int:
        estimate = composed(tuple(choices)).sram_bytes
        return estimate + (int(9 * KIB) if estimate > 65 * KIB else 0)


def _check(sram_kb: float) -> FragmentingFile:
    return FragmentingFile(None, MEMORY, "m4", sram_kb, (0.5,), (0.25,))  # type: ignore[arg-type]


def test_a_file_over_the_budget_is_derived_again_until_it_fits() -> None:
    check, events = _check(75.0), []
    strategy = KnapsackOnly([sram_budget(MEMORY, "m4", 75.0)])
    first = strategy.derive()
    assert composed(tuple(first)).sram_bytes <= 75 * KIB < check.arena_bytes(first)
    choices, record = check.fit(strategy, first, events.append)
    assert choices != first and check.arena_bytes(choices) <= 75 * KIB
    assert record["within"] and record["rounds"] == 2 and record["derived_under_kb"] == 69
    assert [e["type"] for e in events] == ["sram_check", "sram_check"]


def test_a_file_within_the_budget_keeps_its_choices_in_one_round() -> None:
    strategy = KnapsackOnly([sram_budget(MEMORY, "m4", 160.0)])
    first = strategy.derive()
    choices, record = _check(200.0).fit(strategy, first, lambda event: None)
    assert choices == first and record["rounds"] == 1 and record["within"]


def test_a_derive_that_ignores_budgets_is_reported_not_changed() -> None:
    events: list[dict[str, Any]] = []
    strategy = KnapsackOnly([sram_budget(MEMORY, "m4", 75.0)], argmax=True)
    first = strategy.derive()  # (1, 1): 107 KiB composed, past the budget
    choices, record = _check(75.0).fit(strategy, first, events.append)
    assert choices == first and not record["within"]
    assert events[-1]["type"] == "warning" and "75 KiB" in events[-1]["message"]


class AlwaysOver(ExactSram):
    """Every file 50 KiB above its composed arena."""

    def arena_bytes(self, choices: Sequence[int]) -> int:
        return composed(tuple(choices)).sram_bytes + int(50 * KIB)


def test_a_budget_no_derive_can_meet_is_refused_with_the_files_need() -> None:
    check = AlwaysOver(None, MEMORY, "m4", 75.0, (0.5,), (0.25,))  # type: ignore[arg-type]
    strategy = KnapsackOnly([sram_budget(MEMORY, "m4", 75.0)])
    with pytest.raises(ValueError, match=r"SRAM budget 75 KiB: the derived network's file"):
        check.fit(strategy, strategy.derive(), lambda event: None)
