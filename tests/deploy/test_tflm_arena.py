"""The TFLM arena model's parts on hand-made cases: the greedy planner's layout (largest first,
later-added first among equals, lowest gap among the buffers alive at the same time) and the
tail's alignment; the code table's sharing; the predictions against the firmware and the linker
are tests/profilers/mcu/test_arena.py."""

from __future__ import annotations

import pytest

from deploy.mcu_memory import code_bytes
from deploy.tflm_arena import PlannedBuffer, Tail, greedy_plan_bytes
from deploy.tflm_kernels import OpView, kernel_needs


def _buffers(*specs: tuple[int, int, int]) -> list[PlannedBuffer]:
    return [
        PlannedBuffer(size, first, last, f"b{i}") for i, (size, first, last) in enumerate(specs)
    ]


def test_a_chain_reuses_memory_of_tensors_no_longer_alive() -> None:
    # input (0-1), conv out (1-2), conv out (2-3): at most two alive at once
    assert greedy_plan_bytes(_buffers((64, 0, 1), (32, 1, 2), (64, 2, 3))) == 96


def test_a_smaller_buffer_fills_a_gap_between_placed_ones() -> None:
    # 50 at 0; 40 (alive with it) at 50; 45 lives only with the 40: the gap below it at 0
    assert greedy_plan_bytes(_buffers((50, 0, 1), (40, 1, 2), (45, 2, 3))) == 90
    # the same sizes all alive together stack up
    assert greedy_plan_bytes(_buffers((50, 0, 3), (40, 0, 3), (45, 0, 3))) == 135


def test_buffers_alive_at_the_same_scope_never_share_bytes() -> None:
    # largest first: 48 at 0; the two 32s beside it; the 16 that lives with all three goes on top
    buffers = _buffers((48, 1, 1), (32, 0, 1), (32, 1, 2), (16, 0, 2))
    assert greedy_plan_bytes(buffers) == 128  # live peak is 128 at scope 1 as well
    assert greedy_plan_bytes(_buffers((48, 0, 0), (32, 1, 1), (16, 0, 1))) == 64


def test_tail_aligns_each_buffer_down_from_the_arena_end() -> None:
    tail = Tail()
    tail.allocate(5, 1)
    assert tail.used == 5
    tail.allocate(60)  # 16-byte aligned: 65 rounded up
    assert tail.used == 80
    tail.allocate(12, 4)
    assert tail.used == 92


def test_an_operator_the_model_does_not_cover_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="does not cover SOFTMAX"):
        kernel_needs(OpView("SOFTMAX", None, [], []))


def test_code_shared_by_several_operators_is_counted_once() -> None:
    table = {
        "base": 1000,
        "shared": [[["ADD", "CONV_2D"], 300], [["CONV_2D"], 200]],
        "own": {"ADD": 10, "CONV_2D": 20},
        "several": 5,
    }
    assert code_bytes(["CONV_2D"], table) == 1000 + 300 + 200 + 20
    assert code_bytes(["ADD", "CONV_2D", "ADD"], table) == 1000 + 300 + 200 + 10 + 20 + 5
    with pytest.raises(ValueError, match="no code size known for SOFTMAX"):
        code_bytes(["SOFTMAX"], table)
