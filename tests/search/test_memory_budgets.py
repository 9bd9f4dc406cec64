"""SRAM and flash budgets as search budgets, on hand-made LUT memory fields: whatever the
knapsack may choose within them fits the composed SRAM and flash; a budget nothing fits is
refused with the smallest achievable; the request and the job carry them with the same bounds."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from pydantic import ValidationError

from search.memory_budgets import KIB, flash_budget, sram_budget
from search.request import build_requests
from service.schemas.jobs import JobCreate
from service.worker.runner import search_request
from tests.search.memory_fixtures import MEMORY, composed


def _within(budget, choice) -> bool:  # type: ignore[no-untyped-def]
    return budget.cost_model.cost(choice) <= budget.latency_ms


@pytest.mark.parametrize("sram_kb", [70.0, 80.0, 100.0, 160.0])
def test_every_choice_within_the_sram_budget_fits_it(sram_kb: float) -> None:
    budget = sram_budget(MEMORY, "m4", sram_kb)
    choices = list(itertools.product(range(3), range(3)))
    allowed = [c for c in choices if _within(budget, c)]
    assert allowed
    assert all(composed(c).sram_bytes <= sram_kb * KIB for c in allowed)
    if sram_kb >= 160:  # everything fits: nothing is excluded
        assert allowed == choices


def test_an_sram_budget_below_the_fixed_ops_is_refused_with_the_smallest() -> None:
    with pytest.raises(ValueError, match=r"SRAM budget 40 KiB is infeasible.*57 KiB"):
        sram_budget(MEMORY, "m4", 40.0)


def test_the_flash_budget_is_the_sum_of_files_and_the_code_of_every_operator() -> None:
    budget = flash_budget(MEMORY, "m4", 400.0)
    for choice in itertools.product(range(3), range(3)):
        memory = composed(choice)
        # the cost holds the code of every operator the space uses, at least the choice's own
        assert budget.cost_model.cost(choice) * KIB >= memory.flash_bytes
    with pytest.raises(ValueError, match="flash budget 100 KiB is infeasible"):
        flash_budget(MEMORY, "m4", 100.0)


def _document(**memory: object) -> dict:
    return {"space": "mcunet", "dataset": "mnist5k", "devices": ["m4"], "budgets": [150.0],
            **memory}  # fmt: skip


def test_the_request_and_the_job_carry_memory_budgets_with_the_same_bounds() -> None:
    ((_, _, request),) = build_requests(_document(sram_kb=128, flash_kb=512.5), Path("r"))
    assert (request.sram_kb, request.flash_kb) == (128.0, 512.5)
    job = JobCreate(space="mcunet", dataset="mnist5k", devices=["m4"], budgets={"m4": 150.0},
                    sram_kb=128, flash_kb=512.5)  # fmt: skip
    assert search_request(job.model_dump(), "mnist5k", Path("r")) == request
    for bad in (0, -1, float("nan"), 2e6, True, "128"):
        with pytest.raises(ValueError, match="sram_kb"):
            build_requests(_document(sram_kb=bad), Path("r"))
    with pytest.raises(ValidationError):
        JobCreate(space="mcunet", dataset="mnist5k", devices=["m4"], sram_kb=0)
    two = {**_document(sram_kb=128), "budgets": [100.0, 150.0]}
    with pytest.raises(ValueError, match="one search per budget"):
        build_requests(two, Path("r"))
    assert len(build_requests({**two, "shared_supernet": False}, Path("r"))) == 2
    with pytest.raises(ValidationError, match="shared_supernet false"):
        JobCreate(space="mcunet", dataset="mnist5k", devices=["m4"], budgets={"m4": [1.0, 2.0]},
                  flash_kb=512)  # fmt: skip
