"""Posting an agent's OpSpec measurements from a background thread: measuring the next op
overlaps with posting the last, and what queued up while a POST was in flight goes in the next
one, so HTTP costs the measuring loop (almost) nothing even for ops of a few milliseconds."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from profilers.base import PROFILER_VERSION

PostFn = Callable[[str, dict[str, Any]], None]  # (task id, results body); retries by itself
MAX_BATCH = 256  # results per POST (the API's limit is 512)


class MeasurementPoster:
    def __init__(self, post: PostFn, log: Callable[[str], None]) -> None:
        self._post, self._log = post, log
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="poster", daemon=True)
        self._thread.start()

    def put(self, task_id: str, item: dict[str, Any]) -> None:
        """Queue one {"opspec", "measurement"} result of a task."""
        self._queue.put((task_id, item))

    def close(self, timeout: float) -> bool:
        """Post what is queued (for at most `timeout` s) and stop; False if some was left."""
        self._queue.put(None)
        deadline = time.monotonic() + timeout
        self._thread.join(timeout=max(deadline - time.monotonic(), 0))
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            batch, closing = self._take_batch()
            for task_id in dict.fromkeys(task for task, _ in batch):
                items = [item for task, item in batch if task == task_id]
                self._post_batch(task_id, items)
            if closing:
                return

    def _take_batch(self) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        """Block for one result, then take whatever else is queued already."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                return batch, True
            batch.append(more)
        return batch, False

    def _post_batch(self, task_id: str, items: list[dict[str, Any]]) -> None:
        body = {"kind": "measurements", "measurements": items, "profiler_version": PROFILER_VERSION}
        try:
            self._post(task_id, body)
        except Exception as exc:  # the task's lease runs out and another attempt measures them
            self._log(f"results of task {task_id} not posted: {type(exc).__name__}: {exc}")
