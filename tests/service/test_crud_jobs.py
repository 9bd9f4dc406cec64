"""The jobs table as a queue, on real SQLite and PostgreSQL: each job claimed once under
concurrent workers, an expired lease reclaimed, the state machine only moving forward."""

from __future__ import annotations

import threading
import time

import pytest

from lut.store import LutStore
from service.crud.jobs import (
    LeaseLost,
    claim_job,
    finish_job,
    get_job,
    renew_lease,
    request_cancel,
    set_state,
    submit_job,
)
from service.worker.states import can_move


def _submit(store: LutStore, n: int) -> list[str]:
    return [
        submit_job(store.engine, tenant="t", key_id="k" * 32, request={"n": i}, dataset_id=None)
        for i in range(n)
    ]


def test_concurrent_workers_claim_each_job_exactly_once(db_url: str) -> None:
    store = LutStore(db_url)
    submitted = _submit(store, 24)
    claimed: list[str] = []
    lock = threading.Lock()

    def work(worker: str) -> None:
        while (job := claim_job(store.engine, worker, lease_s=600)) is not None:
            with lock:
                claimed.append(job["id"])

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(submitted)
    assert all(get_job(store.engine, j)["attempt"] == 1 for j in submitted)  # type: ignore[index]
    store.close()


def test_expired_lease_is_reclaimed_and_the_old_worker_loses_it(db_url: str) -> None:
    store = LutStore(db_url)
    (job_id,) = _submit(store, 1)
    first = claim_job(store.engine, "dead", lease_s=0.2)
    assert first is not None and first["state"] == "profiling"
    set_state(store.engine, job_id, "dead", "searching")
    assert claim_job(store.engine, "other", lease_s=60) is None  # lease still valid
    time.sleep(0.4)
    second = claim_job(store.engine, "other", lease_s=60)
    assert second is not None and second["id"] == job_id
    assert second["attempt"] == 2 and second["state"] == "searching"
    with pytest.raises(LeaseLost):
        renew_lease(store.engine, job_id, "dead", 60)
    with pytest.raises(LeaseLost):
        finish_job(store.engine, job_id, "dead", "done")
    assert renew_lease(store.engine, job_id, "other", 60) is False
    assert request_cancel(store.engine, job_id, "t") == "searching"
    assert renew_lease(store.engine, job_id, "other", 60) is True  # the worker sees the flag
    finish_job(store.engine, job_id, "other", "cancelled")
    assert get_job(store.engine, job_id)["state"] == "cancelled"  # type: ignore[index]
    store.close()


def test_state_machine_moves_forward_only() -> None:
    assert can_move("queued", "profiling") and can_move("profiling", "training")
    assert can_move("searching", "failed") and can_move("measuring", "cancelled")
    assert not can_move("training", "searching")
    assert not can_move("done", "failed") and not can_move("cancelled", "searching")
