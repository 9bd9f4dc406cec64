"""The jobs table as the queue: submit, claim with a lease (atomic on SQLite and PostgreSQL),
heartbeat, move through states, finish, cancel; job events for progress and SSE."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from sqlalchemy import Connection, Engine, and_, case, insert, or_, select, update

from service.tables import job_events, jobs
from service.worker.states import RUNNING, TERMINAL, can_move


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class LeaseLost(Exception):
    """Another worker holds the job now (this worker's lease expired)."""


def submit_job(
    engine: Engine, *, tenant: str, key_id: str, request: dict[str, Any], dataset_id: str | None
) -> str:
    job_id, now = uuid.uuid4().hex, utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(jobs).values(
                id=job_id,
                tenant=tenant,
                key_id=key_id,
                state="queued",
                request=request,
                dataset_id=dataset_id,
                progress={"state": "queued"},
                cancel_requested=False,
                attempt=0,
                export_files={},
                created_at=now,
                updated_at=now,
            )
        )
        _append_event(conn, job_id, {"type": "state", "state": "queued"})
    return job_id


def get_job(engine: Engine, job_id: str, tenant: str | None = None) -> dict[str, Any] | None:
    query = select(jobs).where(jobs.c.id == job_id)
    if tenant is not None:
        query = query.where(jobs.c.tenant == tenant)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else dict(row._mapping)


def list_jobs(
    engine: Engine, tenant: str, *, state: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    query = select(jobs).where(jobs.c.tenant == tenant)
    if state is not None:
        query = query.where(jobs.c.state == state)
    query = query.order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit).offset(offset)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def _claimable(now: datetime) -> Any:
    return or_(
        jobs.c.state == "queued",
        and_(jobs.c.state.in_(RUNNING), jobs.c.lease_expires_at < now),
    )


def claim_job(engine: Engine, worker_id: str, lease_s: float) -> dict[str, Any] | None:
    """Take the oldest queued job, or a running one whose lease expired (its worker died), in
    one UPDATE … RETURNING. SQLite runs it under BEGIN IMMEDIATE (one writer at a time);
    PostgreSQL skips rows another worker is claiming, and the repeated condition makes a
    re-checked row that was claimed meanwhile match nothing."""
    now = utcnow()
    candidate = (
        select(jobs.c.id).where(_claimable(now)).order_by(jobs.c.created_at, jobs.c.id).limit(1)
    )
    if engine.dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    stmt = (
        update(jobs)
        .where(jobs.c.id == candidate.scalar_subquery(), _claimable(now))
        .values(
            worker_id=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_s),
            heartbeat_at=now,
            attempt=jobs.c.attempt + 1,
            state=case((jobs.c.state == "queued", "profiling"), else_=jobs.c.state),
            updated_at=now,
        )
        .returning(jobs.c.id)
    )
    with engine.begin() as conn:
        job_id = conn.execute(stmt).scalar()
        if job_id is None:
            return None
        row = dict(conn.execute(select(jobs).where(jobs.c.id == job_id)).one()._mapping)
        event = {"type": "claimed", "worker": worker_id, "attempt": row["attempt"]}
        _append_event(conn, job_id, event)
        if row["attempt"] == 1:
            _append_event(conn, job_id, {"type": "state", "state": row["state"]})
    return row


def renew_lease(engine: Engine, job_id: str, worker_id: str, lease_s: float) -> bool:
    """Extend this worker's lease; returns whether cancelling was requested. LeaseLost if the
    job is no longer this worker's."""
    now = utcnow()
    stmt = (
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.worker_id == worker_id, jobs.c.state.in_(RUNNING))
        .values(lease_expires_at=now + timedelta(seconds=lease_s), heartbeat_at=now)
        .returning(jobs.c.cancel_requested)
    )
    with engine.begin() as conn:
        result = conn.execute(stmt).first()
    if result is None:
        raise LeaseLost(job_id)
    return bool(result[0])


def _owned(job_id: str, worker_id: str) -> Any:
    return and_(jobs.c.id == job_id, jobs.c.worker_id == worker_id, jobs.c.state.in_(RUNNING))


def set_state(engine: Engine, job_id: str, worker_id: str, state: str) -> None:
    with engine.begin() as conn:
        current = conn.execute(select(jobs.c.state).where(_owned(job_id, worker_id))).scalar()
        if current is None:
            raise LeaseLost(job_id)
        if current == state or not can_move(current, state):
            return  # a resumed job re-runs earlier stages' code; its state only moves forward
        conn.execute(
            update(jobs)
            .where(_owned(job_id, worker_id))
            .values(state=state, progress={"state": state}, updated_at=utcnow())
        )
        _append_event(conn, job_id, {"type": "state", "state": state})


def update_job(engine: Engine, job_id: str, worker_id: str, **values: Any) -> None:
    """Progress, metrics or export files of a job this worker holds."""
    with engine.begin() as conn:
        result = conn.execute(
            update(jobs).where(_owned(job_id, worker_id)).values(updated_at=utcnow(), **values)
        )
    if not result.rowcount:
        raise LeaseLost(job_id)


def finish_job(
    engine: Engine,
    job_id: str,
    worker_id: str,
    state: str,
    *,
    metrics: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    if state not in TERMINAL:
        raise ValueError(f"{state} is not a final state")
    now = utcnow()
    with engine.begin() as conn:
        values: dict[str, Any] = {
            "state": state,
            "error": error,
            "finished_at": now,
            "updated_at": now,
            "lease_expires_at": None,
            "progress": {"state": state},
        }
        if metrics is not None:
            values["metrics"] = metrics
        result = conn.execute(update(jobs).where(_owned(job_id, worker_id)).values(**values))
        if not result.rowcount:
            raise LeaseLost(job_id)
        event: dict[str, Any] = {"type": "state", "state": state}
        if error:
            event["error"] = error
        _append_event(conn, job_id, event)


def request_cancel(engine: Engine, job_id: str, tenant: str) -> str | None:
    """Cancel a job: at once if it is queued, else by a flag its worker checks between steps.
    Returns the job's state afterwards (None: no such job of this tenant)."""
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(
            select(jobs.c.state).where(jobs.c.id == job_id, jobs.c.tenant == tenant)
        ).first()
        if row is None:
            return None
        if row.state in TERMINAL:
            return str(row.state)
        queued = conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state == "queued")
            .values(
                state="cancelled",
                cancel_requested=True,
                finished_at=now,
                updated_at=now,
                progress={"state": "cancelled"},
            )
        )
        if queued.rowcount:
            _append_event(conn, job_id, {"type": "state", "state": "cancelled"})
            return "cancelled"
        conn.execute(
            update(jobs).where(jobs.c.id == job_id).values(cancel_requested=True, updated_at=now)
        )
        _append_event(conn, job_id, {"type": "cancel_requested"})
        return str(row.state)


def append_event(engine: Engine, job_id: str, event: dict[str, Any]) -> None:
    with engine.begin() as conn:
        _append_event(conn, job_id, event)


def _append_event(conn: Connection, job_id: str, event: dict[str, Any]) -> None:
    kind = str(event.get("type", "event"))[:32]
    conn.execute(
        insert(job_events).values(job_id=job_id, type=kind, data=event, created_at=utcnow())
    )


def events_after(
    engine: Engine, job_id: str, after_id: int, limit: int = 500
) -> list[dict[str, Any]]:
    query = (
        select(job_events.c.id, job_events.c.type, job_events.c.data)
        .where(job_events.c.job_id == job_id, job_events.c.id > after_id)
        .order_by(job_events.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def record_event(
    engine: Engine,
    job_id: str,
    worker_id: str,
    event: dict[str, Any],
    progress: dict[str, Any] | None = None,
) -> None:
    """A progress event of a job this worker holds, and the job's progress, in one transaction."""
    with engine.begin() as conn:
        if progress is not None:
            result = conn.execute(
                update(jobs)
                .where(_owned(job_id, worker_id))
                .values(progress=progress, updated_at=utcnow())
            )
            if not result.rowcount:
                raise LeaseLost(job_id)
        _append_event(conn, job_id, event)


def release_job(engine: Engine, job_id: str, worker_id: str) -> None:
    """Give a job back (its worker is stopping): the next worker claims it at once."""
    with engine.begin() as conn:
        conn.execute(
            update(jobs)
            .where(_owned(job_id, worker_id))
            .values(lease_expires_at=utcnow() - timedelta(seconds=1), updated_at=utcnow())
        )
        _append_event(conn, job_id, {"type": "released", "worker": worker_id})
