"""search_quality's seeds gathered from several result files: seeds run in separate processes
(`--seeds 3 --tag _s3`) or sessions, each file holding its seeds' raw rows, are merged into one
result when they ran the same protocol. Each seed keeps the run record (commit, date, command,
machine) of the file that computed it, and its own budgets: a LUT profiled in another session
puts the three budgets at the same fractions of a slightly different latency range, and each
seed's comparisons are paired within that seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# what must be equal for two files' seeds to be one experiment
PROTOCOL = ("space", "dataset", "test_images")
META_PROTOCOL = (
    "epochs",
    "child_epochs",
    "child_shift_px",
    "weight_sampling",
    "fractions",
    "backend",
)

Rows = list[dict[str, dict[str, Any]]]  # per budget: method → row


class MergeError(ValueError):
    """Files that cannot be merged; the message names the file and what differs."""


def budgets_of(record: dict[str, Any]) -> list[float]:
    """A result's budgets: its fractions of the latency range its LUT predicted."""
    meta = record["meta"]
    lo, hi = meta["space_range_ms"]
    return [lo + float(f) * (hi - lo) for f in str(meta["fractions"]).split(",")]


def shared_limit(record: dict[str, Any]) -> bool:
    """Whether the record's baselines searched under hardcore's limit (its rows name it), not
    under the bare budget as results from before that change."""
    rows = [
        row
        for per_budget in record["per_seed"].values()
        for by in per_budget
        for row in by.values()
    ]
    return bool(rows) and all("limit_ms" in row for row in rows)


def differences(record: dict[str, Any], first: dict[str, Any]) -> list[str]:
    top = [k for k in PROTOCOL if record.get(k) != first.get(k)]
    meta = [k for k in META_PROTOCOL if record["meta"].get(k) != first["meta"].get(k)]
    limit = [] if shared_limit(record) == shared_limit(first) else ["the baselines' limit"]
    return top + meta + limit


def gather(
    files: list[Path],
) -> tuple[dict[str, Any], dict[int, Rows], dict[int, list[float]], dict[int, dict[str, Any]]]:
    """(the first file's record, rows per seed, budgets per seed, run record per seed) of
    `files`; MergeError where a file ran another protocol or two files hold the same seed."""
    if not files:
        raise MergeError("no result files to merge")
    records = []
    for path in files:
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise MergeError(f"{path}: not a readable result ({exc})") from None
    first = records[0]
    per_seed: dict[int, Rows] = {}
    seed_budgets: dict[int, list[float]] = {}
    seed_runs: dict[int, dict[str, Any]] = {}
    for path, record in zip(files, records, strict=True):
        differs = differences(record, first)
        if differs:
            raise MergeError(f"{path} ran another protocol than {files[0]}: {', '.join(differs)}")
        budgets = budgets_of(record)
        for key, rows in record["per_seed"].items():
            seed = int(key)
            if seed in per_seed:
                raise MergeError(f"seed {seed} is in two of the files ({path} among them)")
            per_seed[seed] = rows
            seed_budgets[seed] = record.get("budgets_ms_per_seed", {}).get(key, budgets)
            seed_runs[seed] = record.get("seed_runs", {}).get(key, record.get("run", {}))
    return first, per_seed, seed_budgets, seed_runs
