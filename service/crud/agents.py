"""The agent registry and task queue over the service database.

Creating a task is idempotent (a unique `dedupe_key`, insert-or-ignore). Claiming is one atomic
`UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`: PostgreSQL skips rows other
claimers hold, SQLite (which drops FOR UPDATE) runs it under the write lock every transaction
takes at BEGIN IMMEDIATE (lut/db.py). A claimed task whose lease expired is claimed again.
Who may claim what is decided in service/crud/ownership.py; the queue applies it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from lut.db import utcnow
from lut.store import Device
from service.tables import AgentRow, AgentTaskRow

AGENTS = cast(Table, AgentRow.__table__)
TASKS = cast(Table, AgentTaskRow.__table__)


def as_utc(moment: datetime) -> datetime:
    """SQLite returns naive datetimes (stored as UTC); PostgreSQL aware ones."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Agent:
    id: str
    key_id: str
    tenant: str
    name: str
    device_id: int
    backend: str
    created_at: datetime
    last_seen_at: datetime

    def online(self, offline_after_s: float, now: datetime | None = None) -> bool:
        age = (now or utcnow()) - as_utc(self.last_seen_at)
        return age.total_seconds() <= offline_after_s

    @classmethod
    def from_mapping(cls, row: Any) -> Agent:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Task:
    id: str
    device_id: int
    kind: str
    status: str
    payload: dict[str, Any]
    job_id: str | None
    tenant: str | None
    claimed_by: str | None
    attempts: int
    result: dict[str, Any] | None
    error: str | None

    @classmethod
    def from_mapping(cls, row: Any) -> Task:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def _insert(engine: Engine, table: Any) -> Any:
    return (sqlite if engine.dialect.name == "sqlite" else postgresql).insert(table)


# -- agents ------------------------------------------------------------------------------------
def register_agent(engine: Engine, device: Device, key_id: str, tenant: str) -> Agent:
    """The agent of this key on this device LUT, created if new; registering again only marks
    it seen (safe under races: insert-or-ignore on the (key, device) pair)."""
    now = utcnow()
    values = {
        "id": uuid.uuid4().hex,
        "key_id": key_id,
        "tenant": tenant,
        "name": device.name,
        "device_id": device.id,
        "backend": device.backend,
        "created_at": now,
        "last_seen_at": now,
    }
    stmt = _insert(engine, AGENTS).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key_id", "device_id"], set_={"last_seen_at": now}
    )
    with engine.begin() as connection:
        row = connection.execute(stmt.returning(*AGENTS.c)).mappings().one()
    return Agent.from_mapping(row)


def get_agent(engine: Engine, agent_id: str) -> Agent | None:
    with engine.connect() as connection:
        row = connection.execute(select(AGENTS).where(AGENTS.c.id == agent_id)).mappings().first()
    return Agent.from_mapping(row) if row else None


def agents(engine: Engine, *, device_id: int | None = None, name: str | None = None) -> list[Agent]:
    query = select(AGENTS).order_by(AGENTS.c.name, AGENTS.c.created_at)
    if device_id is not None:
        query = query.where(AGENTS.c.device_id == device_id)
    if name is not None:
        query = query.where(AGENTS.c.name == name)
    with engine.connect() as connection:
        return [Agent.from_mapping(r) for r in connection.execute(query).mappings()]


def online_agents(engine: Engine, device_id: int, offline_after_s: float) -> list[Agent]:
    now = utcnow()
    return [a for a in agents(engine, device_id=device_id) if a.online(offline_after_s, now)]


def heartbeat(engine: Engine, agent_id: str, task_id: str | None, lease_s: float) -> None:
    """Mark the agent seen; renew the lease of the task it is working on, if it still holds it."""
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(update(AGENTS).where(AGENTS.c.id == agent_id).values(last_seen_at=now))
        if task_id is not None:
            connection.execute(
                update(TASKS)
                .where(
                    TASKS.c.id == task_id,
                    TASKS.c.claimed_by == agent_id,
                    TASKS.c.status == "claimed",
                )
                .values(lease_expires_at=now + timedelta(seconds=lease_s))
            )


# -- tasks -------------------------------------------------------------------------------------
def dedupe_key(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def create_task(
    engine: Engine,
    device_id: int,
    kind: str,
    payload: dict[str, Any],
    *,
    key: str,
    job_id: str | None = None,
    tenant: str | None = None,
) -> Task:
    """The task with this dedupe key, created pending if new. A failed one is made pending
    again: whoever asks for it again wants another attempt."""
    stmt = _insert(engine, TASKS).values(
        id=uuid.uuid4().hex,
        dedupe_key=key,
        device_id=device_id,
        kind=kind,
        status="pending",
        payload=payload,
        job_id=job_id,
        tenant=tenant,
        attempts=0,
        created_at=utcnow(),
    )
    with engine.begin() as connection:
        connection.execute(stmt.on_conflict_do_nothing(index_elements=["dedupe_key"]))
        connection.execute(
            update(TASKS)
            .where(TASKS.c.dedupe_key == key, TASKS.c.status == "failed")
            .values(status="pending", error=None, claimed_by=None, lease_expires_at=None)
        )
        row = connection.execute(select(TASKS).where(TASKS.c.dedupe_key == key)).mappings().one()
    return Task.from_mapping(row)


def get_task(engine: Engine, task_id: str) -> Task | None:
    with engine.connect() as connection:
        row = connection.execute(select(TASKS).where(TASKS.c.id == task_id)).mappings().first()
    return Task.from_mapping(row) if row else None


def tasks_by_id(engine: Engine, task_ids: list[str]) -> list[Task]:
    with engine.connect() as connection:
        rows = connection.execute(select(TASKS).where(TASKS.c.id.in_(task_ids))).mappings()
        return [Task.from_mapping(r) for r in rows]


def claimable_by(agent: Agent, model_tenants: Collection[str]) -> Any:
    """The tasks `agent` may take: its device's LUT work, and model tasks of jobs of
    `model_tenants` (ownership.served_tenants)."""
    return (TASKS.c.device_id == agent.device_id) & (
        (TASKS.c.kind != "model") | TASKS.c.tenant.in_(sorted(model_tenants))
    )


def claim_task(
    engine: Engine, agent: Agent, lease_s: float, *, model_tenants: Collection[str]
) -> Task | None:
    """Atomically claim the oldest pending (or lease-expired) task `agent` may take."""
    now = utcnow()
    claimable = or_(
        TASKS.c.status == "pending",
        (TASKS.c.status == "claimed") & (TASKS.c.lease_expires_at < now),
    )
    candidate = (
        select(TASKS.c.id)
        .where(claimable_by(agent, model_tenants), claimable)
        .order_by(TASKS.c.created_at, TASKS.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(TASKS)
        .where(TASKS.c.id == candidate, claimable)
        .values(
            status="claimed",
            claimed_by=agent.id,
            lease_expires_at=now + timedelta(seconds=lease_s),
            attempts=TASKS.c.attempts + 1,
        )
        .returning(*TASKS.c)
    )
    with engine.begin() as connection:
        row = connection.execute(stmt).mappings().first()
    return Task.from_mapping(row) if row else None


def release_task(engine: Engine, task_id: str, agent_id: str) -> bool:
    """Give a task `agent_id` holds back to the queue (its device went away): pending again at
    once, for any agent of the device, instead of after its lease. False if it did not hold it."""
    stmt = (
        update(TASKS)
        .where(TASKS.c.id == task_id, TASKS.c.claimed_by == agent_id, TASKS.c.status == "claimed")
        .values(status="pending", claimed_by=None, lease_expires_at=None)
    )
    with engine.begin() as connection:
        return bool(connection.execute(stmt).rowcount)


def finish_task(
    engine: Engine,
    task_id: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Mark a task done (or failed with a one-line error). Done is final: a late failure report
    from an agent whose lease had expired does not undo another agent's success."""
    values: dict[str, Any] = {"finished_at": utcnow(), "lease_expires_at": None}
    if error is None:
        values.update(status="done", result=result)
        where = TASKS.c.id == task_id
    else:
        values.update(status="failed", error=error[:2000])
        where = (TASKS.c.id == task_id) & (TASKS.c.status != "done")
    with engine.begin() as connection:
        connection.execute(update(TASKS).where(where).values(**values))


def pending_counts(engine: Engine, device_id: int) -> dict[str, int]:
    query = (
        select(TASKS.c.status, func.count())
        .where(TASKS.c.device_id == device_id)
        .group_by(TASKS.c.status)
    )
    with engine.connect() as connection:
        return {status: int(n) for status, n in connection.execute(query).all()}


def pending_for(engine: Engine, agent: Agent, model_tenants: Collection[str]) -> int:
    """How many pending tasks `agent` may take (not other tenants' models it may not see)."""
    query = select(func.count()).where(
        claimable_by(agent, model_tenants), TASKS.c.status == "pending"
    )
    with engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)
