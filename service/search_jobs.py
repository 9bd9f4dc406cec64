"""Turn a search request document (CLI arguments now, REST jobs later) into SearchRequests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from search.engine import SearchSettings
from search.run import SearchRequest


def build_requests(req: dict[str, Any]) -> list[tuple[float | None, Path, SearchRequest]]:
    """One SearchRequest per budget on the primary device; with several budgets each run goes
    to `out/budget-<ms>`, else to `out` itself."""
    devices = list(dict.fromkeys(req["devices"]))
    extra = req.get("device_budgets", {})
    unknown = set(extra) - set(devices)
    devices += sorted(unknown)  # a budgeted device need not be repeated with --device
    settings = search_settings(req)
    out = Path(req["out"])
    result = []
    for budget in req["budgets"]:
        budgets = tuple([budget, *[extra.get(d) for d in devices[1:]]])
        run_dir = out / f"budget-{budget:g}" if len(req["budgets"]) > 1 else out
        request = SearchRequest(
            space=req["space"],
            dataset=req["dataset"],
            devices=tuple(devices),
            budgets_ms=budgets,
            settings=settings,
            child_epochs=req.get("child_epochs"),
            inherit_weights=bool(req.get("inherit_weights")),
            child_shift_px=int(req.get("child_shift_px") or 0),
            trials=int(req.get("trials", 8)),
        )
        result.append((budget, run_dir, request))
    return result


def search_settings(req: dict[str, Any]) -> SearchSettings:
    """The search settings of a request document (the CLI's or a REST job's: the same keys)."""
    return SearchSettings(
        strategy=req["strategy"],
        epochs=req["epochs"],
        warmup_epochs=req.get("warmup_epochs"),  # None: the default for these epochs
        batch_size=req["batch_size"],
        seed=req["seed"],
        arch_lr=req.get("arch_lr"),
        checkpoint_every=max(1, req["checkpoint_every"]),
        strategy_options=dict(req.get("options") or {}),
    )
