"""Checks of a job request that need the database or the registries; each failure is one line
(HTTP 422)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from lut.store import LutStore
from service.crud.datasets import get_dataset


class InvalidJob(ValueError):
    pass


def check_job(store: LutStore, engine: Engine, tenant: str, body: Any) -> str | None:
    """Returns the dataset id (None for a built-in dataset) or raises InvalidJob."""
    from search.data.builtins import dataset_names
    from search.spaces.base import space_from_string
    from search.strategies.base import strategy_names

    try:
        space_from_string(body.space)
    except (ValueError, KeyError) as exc:
        raise InvalidJob(f"space: {exc}") from None
    if body.strategy not in strategy_names():
        raise InvalidJob(
            f"unknown strategy {body.strategy!r}; valid: {', '.join(strategy_names())}"
        )
    _check_options(body.strategy, body.options)
    if body.strategy == "hardcore" and not body.budgets:
        raise InvalidJob("the hardcore strategy needs a latency budget: budgets {device: ms}")
    known = {d.name for d in store.devices()}
    missing = [d for d in body.devices if d not in known]
    if missing:
        listed = ", ".join(sorted(known)) or "none yet: profile one or start an agent"
        raise InvalidJob(f"unknown device(s) {', '.join(missing)}; registered: {listed}")
    if body.dataset in dataset_names():
        return None
    if get_dataset(engine, tenant, body.dataset) is None:
        raise InvalidJob(
            f"unknown dataset {body.dataset!r}: upload one (POST /datasets) or use a "
            f"built-in ({', '.join(dataset_names())})"
        )
    return str(body.dataset)


def _check_options(strategy: str, options: dict[str, Any]) -> None:
    """The strategy's own check (unknown keys, bad values), as `hwnas search` runs it."""
    from search.strategies.base import get_strategy

    try:
        get_strategy(strategy).check_options(options)
    except ValueError as exc:
        raise InvalidJob(str(exc)) from None
