"""The job state machine: queued → profiling → searching → training → exporting → measuring →
done | failed | cancelled."""

from __future__ import annotations

from typing import Literal

JobState = Literal[
    "queued",
    "profiling",
    "searching",
    "training",
    "exporting",
    "measuring",
    "done",
    "failed",
    "cancelled",
]
PIPELINE: tuple[JobState, ...] = (
    "queued",
    "profiling",
    "searching",
    "training",
    "exporting",
    "measuring",
    "done",
)
RUNNING: tuple[JobState, ...] = ("profiling", "searching", "training", "exporting", "measuring")
TERMINAL: tuple[JobState, ...] = ("done", "failed", "cancelled")


def can_move(current: str, new: str) -> bool:
    """Forward along the pipeline (stages may be skipped), or to failed / cancelled from any
    state that is not terminal yet."""
    if current in TERMINAL:
        return False
    if new in ("failed", "cancelled"):
        return True
    if current not in PIPELINE or new not in PIPELINE:
        return False
    return PIPELINE.index(new) >= PIPELINE.index(current)
