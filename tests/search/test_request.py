"""The one search request: the CLI's request document and a REST job become the same
SearchRequest, with the same defaults and bounds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from search.request import BOUNDS, SearchSettings, build_requests
from service.schemas.jobs import JobCreate
from service.worker.runner import search_request, search_requests


def test_a_job_and_the_clis_document_build_the_same_request() -> None:
    job = JobCreate(
        space="fbnet-tiny",
        dataset="mnist5k",
        devices=["laptop", "pi"],
        budgets={"laptop": 0.3, "pi": 2.0},
        epochs=3,
        options={"margin": 0.1},
    )
    via_job = search_request(job.model_dump(), "mnist5k", Path("run"))
    document = {
        "space": "fbnet-tiny",
        "dataset": "mnist5k",
        "devices": ["laptop"],
        "budgets": [0.3],
        "device_budgets": {"pi": 2.0},
        "epochs": 3,
        "options": {"margin": 0.1},
    }
    ((budget, run_dir, via_cli),) = build_requests(document, Path("run"))
    assert via_job == via_cli
    assert (budget, run_dir, via_cli.budgets_ms) == (0.3, Path("run"), (0.3, 2.0))


def test_several_budgets_are_one_search_each_in_their_own_folder() -> None:
    document = {"space": "fbnet-tiny", "dataset": "digits", "devices": ["d"], "budgets": [1, 2]}
    built = build_requests(document, Path("out"))
    assert [(b, d) for b, d, _ in built] == [(1, Path("out/budget-1")), (2, Path("out/budget-2"))]


def test_the_job_schema_takes_the_requests_defaults_and_bounds() -> None:
    defaults = SearchSettings("hardcore")
    job = JobCreate(space="fbnet-tiny", dataset="mnist5k", devices=["d"])
    assert (job.epochs, job.batch_size, job.seed) == (
        defaults.epochs,
        defaults.batch_size,
        defaults.seed,
    )
    for name, (low, high) in BOUNDS.items():
        with pytest.raises(ValidationError, match=name):
            JobCreate(space="fbnet-tiny", dataset="mnist5k", devices=["d"], **{name: high + 1})
        document = {"space": "s", "dataset": "d", "devices": ["d"], name: low - 1}
        if name != "warmup_epochs":  # below 0 is refused by the settings, naming the default
            with pytest.raises(ValueError, match=f"{name} must be an integer from {low}"):
                build_requests(document, Path("out"))


def test_export_formats_are_checked_against_the_registry() -> None:
    with pytest.raises(ValidationError, match="unknown export format 'exe'; valid: onnx"):
        JobCreate(space="fbnet-tiny", dataset="mnist5k", devices=["d"], export_formats=["exe"])


def test_a_job_may_give_its_primary_device_several_budgets() -> None:
    job = JobCreate(
        space="fbnet-tiny",
        dataset="mnist5k",
        devices=["laptop", "pi"],
        budgets={"laptop": [0.3, 0.2], "pi": 2.0},
        arch_steps=7,
    )
    document = {
        "space": "fbnet-tiny",
        "dataset": "mnist5k",
        "devices": ["laptop"],
        "budgets": [0.3, 0.2],
        "device_budgets": {"pi": 2.0},
        "arch_steps": 7,
    }
    via_job = search_requests(job.model_dump(), "mnist5k", Path("run"))
    assert via_job == build_requests(document, Path("run"))
    assert [(b, d, r.budgets_ms) for b, d, r in via_job] == [
        (0.3, Path("run/budget-0.3"), (0.3, 2.0)),
        (0.2, Path("run/budget-0.2"), (0.2, 2.0)),
    ]
    assert via_job[0][2].settings.arch_steps == 7
    one = JobCreate(space="fbnet-tiny", dataset="mnist5k", devices=["d"], budgets={"d": [0.3]})
    assert search_request(one.model_dump(), "mnist5k", Path("run")).budgets_ms == (0.3,)


@pytest.mark.parametrize(
    ("budgets", "extra", "needle"),
    [
        ({"d": 1.0, "e": [1.0, 2.0]}, {}, "only the primary device (d) may have several"),
        ({"d": [1.0, 1.0]}, {}, "must differ"),
        ({"d": []}, {}, "at least 1 item"),
        ({"d": [1.0, 2.0]}, {"export_formats": ["onnx"]}, "export_formats need a single budget"),
        ({"d": [1.0, 2.0]}, {"arch_steps": 0}, "arch_steps"),
    ],
)
def test_a_jobs_budgets_are_checked(budgets: dict, extra: dict, needle: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(needle)):
        JobCreate(
            space="fbnet-tiny", dataset="mnist5k", devices=["d", "e"], budgets=budgets, **extra
        )


def test_the_clis_budgets_must_differ() -> None:
    document = {"space": "s", "dataset": "d", "devices": ["d"], "budgets": [0.3, 0.3000001]}
    with pytest.raises(ValueError, match="budgets must differ"):
        build_requests(document, Path("out"))
