"""What a pipeline stage gets (StageContext) and how it stops a job (JobFailed, JobCancelled)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from lut.store import LutStore
from search.spaces.base import SearchSpace
from service.config import Settings


class JobFailed(Exception):
    """The job cannot go on; the one-line message is stored on the job as its error."""


class JobCancelled(Exception):
    """The job's owner asked to cancel it."""


@dataclass
class StageContext:
    engine: Engine  # the service/LUT database
    store: LutStore
    settings: Settings
    job_id: str
    tenant: str
    space: SearchSpace  # bound to the dataset's channels and classes
    devices: list[str]  # LUT device names (lut.store.Device.name)
    run_dir: Path  # run_search's outputs; export/ and card.* after exporting
    export_files: dict[str, str] = field(default_factory=dict)  # format -> path
    worker_id: str = ""  # whose lease the job runs under
    emit: Callable[[dict[str, Any]], None] = lambda event: None  # appends a job event
    check_cancelled: Callable[[], None] = lambda: None  # raises JobCancelled
