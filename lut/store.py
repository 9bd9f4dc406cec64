"""LutStore: devices, measurements, coverage, fixed costs and calibrations in one database."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from lut.db import (
    CalibrationRow,
    DeviceOwnerRow,
    DeviceRow,
    DeviceShareRow,
    EndToEndRow,
    MeasurementRow,
    make_engine,
    utcnow,
)
from lut.measurement import Measurement
from lut.migrate import migrate
from lut.opspec import OpSpec, with_dtype
from lut.predictor import IN_NETWORK_TIMING, Calibration, FixedCosts, needs_measurement


class DatabaseUnavailable(RuntimeError):
    """The database cannot be opened or reached; the message says which and why."""


class DeviceNotFound(LookupError):
    pass


# The tenant of devices profiled from the command line: the operator's, that of the admin key
# `hwnas serve` ensures (service/app.py).
OPERATOR_TENANT = "default"


class DeviceOwned(PermissionError):
    """A device name that belongs to another tenant. The message does not name the owner (it
    may reach that other tenant); `owner` does, for the operator's command line."""

    def __init__(self, name: str, owner: str) -> None:
        super().__init__(f"device {name!r} belongs to another tenant")
        self.name, self.owner = name, owner


def fingerprint_hash(fingerprint: dict[str, Any]) -> str:
    canonical = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def arch_key(arch: str) -> str:
    return hashlib.sha256(arch.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Device:
    id: int
    name: str
    backend: str
    fingerprint: dict[str, Any]
    fingerprint_hash: str
    fixed_costs: FixedCosts | None
    created_at: datetime

    @property
    def label(self) -> str:
        return f"{self.name} ({self.backend} {self.fingerprint.get('runtime_version', '?')})"

    @property
    def opspec_dtype(self) -> str | None:
        """The dtype this device's LUT keys its specs with (None: the specs' own)."""
        value = self.fingerprint.get("opspec_dtype")
        return str(value) if value else None

    def lut_spec(self, spec: OpSpec) -> OpSpec:
        return with_dtype(spec, self.opspec_dtype)

    @classmethod
    def from_row(cls, row: DeviceRow) -> Device:
        fixed = FixedCosts.from_dict(row.fixed_costs) if row.fixed_costs else None
        return cls(
            row.id,
            row.name,
            row.backend,
            row.fingerprint,
            row.fingerprint_hash,
            fixed,
            row.created_at,
        )


@dataclass(frozen=True)
class StoredMeasurement:
    spec: OpSpec
    measurement: Measurement
    profiler_version: str
    created_at: datetime


def measurement_from_row(row: MeasurementRow | EndToEndRow) -> Measurement:
    extra = row.extra or {}
    return Measurement.from_samples(
        row.samples_ms, warmup=row.warmup, peak_memory_bytes=row.peak_memory_bytes, extra=extra
    )


class LutStore:
    """All LUT reads and writes. Writes are idempotent (insert-or-ignore on natural keys)."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = make_engine(url)
            migrate(self.engine)
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailable(f"cannot open database {_safe(url)}: {reason}") from None
        except ImportError as exc:
            raise DatabaseUnavailable(f"no driver for database {_safe(url)}: {exc}") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self, connection: Connection | None = None) -> Iterator[Connection]:
        """One write transaction (joined if `connection` is already one)."""
        if connection is not None:
            yield connection
            return
        with self.engine.begin() as new:
            yield new

    def _insert(self, table: Any) -> Any:
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        return dialect.insert(table)

    # -- devices -------------------------------------------------------------------------
    def register_device(
        self, name: str, fingerprint: dict[str, Any], *, owner: str = OPERATOR_TENANT
    ) -> Device:
        """The device with this name and fingerprint, created if new (safe under races). The
        name is claimed for `owner` if nobody holds it yet; DeviceOwned if another tenant does."""
        if not name or len(name) > 100:
            raise ValueError("a device name must have 1 to 100 characters")
        digest = fingerprint_hash(fingerprint)
        stmt = self._insert(DeviceRow.__table__).values(
            name=name,
            backend=str(fingerprint.get("backend", "unknown")),
            fingerprint_hash=digest,
            fingerprint=fingerprint,
            created_at=utcnow(),
        )
        with Session(self.engine) as session, session.begin():
            self._claim(session.connection(), name, owner)
            session.execute(
                stmt.on_conflict_do_nothing(index_elements=["name", "fingerprint_hash"])
            )
            row = session.scalars(
                select(DeviceRow).where(
                    DeviceRow.name == name, DeviceRow.fingerprint_hash == digest
                )
            ).one()
            return Device.from_row(row)

    def devices(self, name: str | None = None, backend: str | None = None) -> list[Device]:
        query = select(DeviceRow).order_by(DeviceRow.name, DeviceRow.created_at, DeviceRow.id)
        if name is not None:
            query = query.where(DeviceRow.name == name)
        if backend is not None:
            query = query.where(DeviceRow.backend == backend)
        with Session(self.engine) as session:
            return [Device.from_row(row) for row in session.scalars(query)]

    def holds_in_network_lut(self, name: str) -> bool:
        """Whether device `name` holds a LUT profiled inside networks (`profilers.in_network`)."""
        return any(d.fingerprint.get("timing") == IN_NETWORK_TIMING for d in self.devices(name))

    def device(self, device_id: int) -> Device:
        with Session(self.engine) as session:
            return Device.from_row(session.get_one(DeviceRow, device_id))

    def resolve_device(self, name: str, backend: str | None = None) -> Device:
        """The newest LUT of device `name` (of `backend` if given); errors name the choices."""
        found = self.devices(name, backend)
        if not found:
            known = sorted({d.name for d in self.devices()})
            where = f" with backend {backend!r}" if backend else ""
            choices = ", ".join(known) if known else "none yet: run `hwnas profile` first"
            raise DeviceNotFound(f"unknown device {name!r}{where}; known devices: {choices}")
        backends = sorted({d.backend for d in found})
        if backend is None and len(backends) > 1:
            raise DeviceNotFound(
                f"device {name!r} has LUTs for several backends ({', '.join(backends)}); "
                "pick one with --backend"
            )
        return found[-1]

    def set_fixed_costs(
        self, device: Device, fixed: FixedCosts, *, connection: Connection | None = None
    ) -> None:
        stmt = (
            update(DeviceRow).where(DeviceRow.id == device.id).values(fixed_costs=fixed.to_dict())
        )
        with self.transaction(connection) as conn:
            conn.execute(stmt)

    def delete_device(self, device: Device) -> None:
        """Delete one LUT. Its name stays its owner's (no other tenant can take it over)."""
        with Session(self.engine) as session, session.begin():
            for table in (MeasurementRow, EndToEndRow, CalibrationRow):
                session.execute(delete(table).where(table.device_id == device.id))
            session.execute(delete(DeviceRow).where(DeviceRow.id == device.id))

    # -- ownership and sharing ------------------------------------------------------------
    def _claim(self, connection: Connection, name: str, tenant: str) -> None:
        """Claim device `name` for `tenant` unless someone holds it: one insert-or-ignore on
        the name, so two tenants racing for a new name cannot both win."""
        stmt = self._insert(DeviceOwnerRow.__table__).values(
            name=name, tenant=tenant, created_at=utcnow()
        )
        connection.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
        owner = connection.execute(
            select(DeviceOwnerRow.tenant).where(DeviceOwnerRow.name == name)
        ).scalar_one()
        if owner != tenant:
            raise DeviceOwned(name, owner)

    def device_owner(self, name: str) -> str | None:
        """The tenant device `name` belongs to; None for a name nobody registered yet."""
        with self.engine.connect() as connection:
            query = select(DeviceOwnerRow.tenant).where(DeviceOwnerRow.name == name)
            return connection.execute(query).scalar()

    def device_owners(self) -> dict[str, str]:
        """Device name → owner tenant, for every name."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(DeviceOwnerRow.name, DeviceOwnerRow.tenant))
            return {name: tenant for name, tenant in rows}

    def share_device(self, name: str, tenant: str) -> bool:
        """Let `tenant`'s jobs use device `name`'s agents; False if it already could. Raises
        DeviceNotFound for a name nobody owns, ValueError for sharing with the owner itself."""
        owner = self.device_owner(name)
        if owner is None:
            raise DeviceNotFound(f"unknown device {name!r}")
        if owner == tenant:
            raise ValueError(f"device {name!r} already belongs to tenant {tenant!r}")
        stmt = self._insert(DeviceShareRow.__table__).values(
            name=name, tenant=tenant, created_at=utcnow()
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=["name", "tenant"])
        with self.engine.begin() as connection:
            return bool(connection.execute(stmt.returning(DeviceShareRow.tenant)).first())

    def unshare_device(self, name: str, tenant: str) -> bool:
        """Stop sharing device `name` with `tenant`; False if it was not shared with it."""
        stmt = delete(DeviceShareRow).where(
            DeviceShareRow.name == name, DeviceShareRow.tenant == tenant
        )
        with self.engine.begin() as connection:
            return bool(connection.execute(stmt.returning(DeviceShareRow.tenant)).first())

    def device_shares(self, name: str | None = None) -> dict[str, list[str]]:
        """Device name → the tenants it is shared with (sorted); of one name if given."""
        query = select(DeviceShareRow.name, DeviceShareRow.tenant).order_by(
            DeviceShareRow.name, DeviceShareRow.tenant
        )
        if name is not None:
            query = query.where(DeviceShareRow.name == name)
        shares: dict[str, list[str]] = {}
        with self.engine.connect() as connection:
            for device, tenant in connection.execute(query):
                shares.setdefault(device, []).append(tenant)
        return shares

    def may_use(self, name: str, tenant: str) -> bool:
        """Whether `tenant` owns device `name` or was shared it."""
        return self.device_owner(name) == tenant or tenant in self.device_shares(name).get(name, [])

    # -- measurements --------------------------------------------------------------------
    def add_measurement(
        self,
        device: Device,
        spec: OpSpec,
        measurement: Measurement,
        *,
        profiler_version: str = "1",
        replace: bool = False,
    ) -> bool:
        """Store one op's measurement in a single statement (never half-written). Returns False
        when the LUT already had this op and `replace` is off."""
        return (
            self.add_measurements(
                device, [(spec, measurement)], profiler_version=profiler_version, replace=replace
            )
            == 1
        )

    def add_measurements(
        self,
        device: Device,
        items: Iterable[tuple[OpSpec, Measurement]],
        *,
        profiler_version: str = "1",
        replace: bool = False,
        created_at: datetime | None = None,
        connection: Connection | None = None,
    ) -> int:
        rows = [
            measurement_values(device.id, device.lut_spec(s), m, profiler_version, created_at)
            for s, m in items
        ]
        return self.insert_measurement_rows(rows, replace=replace, connection=connection)

    def insert_measurement_rows(
        self, rows: list[dict[str, Any]], *, replace: bool, connection: Connection | None = None
    ) -> int:
        if not rows:
            return 0
        stmt = self._insert(MeasurementRow.__table__).values(rows)
        if replace:
            excluded = stmt.excluded
            stmt = stmt.on_conflict_do_update(
                index_elements=["device_id", "op_key"],
                set_={k: excluded[k] for k in rows[0] if k not in ("device_id", "op_key")},
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=["device_id", "op_key"])
        # Count with RETURNING: rowcount is unreliable for multi-row inserts across drivers.
        with self.transaction(connection) as conn:
            return len(conn.execute(stmt.returning(MeasurementRow.__table__.c.op_key)).all())

    def measured_keys(self, device: Device) -> set[str]:
        with Session(self.engine) as session:
            query = select(MeasurementRow.op_key).where(MeasurementRow.device_id == device.id)
            return set(session.scalars(query))

    def count_measurements(self, device: Device | None = None) -> int:
        query = select(func.count()).select_from(MeasurementRow)
        if device is not None:
            query = query.where(MeasurementRow.device_id == device.id)
        with Session(self.engine) as session:
            return int(session.scalar(query) or 0)

    def lookup(
        self, device: Device, specs: Sequence[OpSpec] | None = None
    ) -> dict[str, Measurement]:
        """op key → Measurement for `specs` (all of the device's entries if None)."""
        return {k: v.measurement for k, v in self.entries(device, specs).items()}

    def entries(
        self, device: Device, specs: Sequence[OpSpec] | None = None
    ) -> dict[str, StoredMeasurement]:
        """op key → stored entry; an int8 device's entries under the keys of the specs asked
        with (see `Device.lut_spec`)."""
        query = select(MeasurementRow).where(MeasurementRow.device_id == device.id)
        asked: dict[str, str] = {}
        if specs is not None:
            asked = {device.lut_spec(s).key: s.key for s in specs}
            query = query.where(MeasurementRow.op_key.in_(set(asked)))
        with Session(self.engine) as session:
            return {
                asked.get(row.op_key, row.op_key): StoredMeasurement(
                    OpSpec.from_dict(row.opspec),
                    measurement_from_row(row),
                    row.profiler_version,
                    row.created_at,
                )
                for row in session.scalars(query.order_by(MeasurementRow.id))
            }

    def missing(self, device: Device, specs: Sequence[OpSpec]) -> list[OpSpec]:
        """Coverage: the specs (that need measuring) this device's LUT does not hold yet."""
        have = self.measured_keys(device)
        return [
            s for s in _unique(specs) if needs_measurement(s) and device.lut_spec(s).key not in have
        ]

    # -- end-to-end measurements and calibrations ---------------------------------------
    def add_e2e(
        self,
        device: Device,
        arch: str,
        space: str,
        measurement: Measurement,
        *,
        connection: Connection | None = None,
    ) -> None:
        values = {
            "device_id": device.id,
            "arch_key": arch_key(arch),
            "arch": arch,
            "space": space,
            "median_ms": measurement.median_ms,
            "samples_ms": list(measurement.samples_ms),
            "warmup": measurement.warmup,
            "peak_memory_bytes": measurement.peak_memory_bytes,
            "created_at": utcnow(),
            "extra": measurement.extra,
        }
        stmt = self._insert(EndToEndRow.__table__).values(values)
        replaced = ("median_ms", "samples_ms", "warmup", "created_at", "extra")
        stmt = stmt.on_conflict_do_update(
            index_elements=["device_id", "arch_key"],
            set_={k: stmt.excluded[k] for k in replaced},
        )
        with self.transaction(connection) as conn:
            conn.execute(stmt)

    def e2e_measurements(
        self, device: Device, space: str | None = None
    ) -> list[tuple[str, Measurement]]:
        query = select(EndToEndRow).where(EndToEndRow.device_id == device.id)
        if space is not None:
            query = query.where(EndToEndRow.space == space)
        with Session(self.engine) as session:
            rows = session.scalars(query.order_by(EndToEndRow.id))
            return [(row.arch, measurement_from_row(row)) for row in rows]

    def set_calibration(
        self,
        device: Device,
        space: str,
        calibration: Calibration,
        *,
        connection: Connection | None = None,
    ) -> None:
        stmt = self._insert(CalibrationRow.__table__).values(
            device_id=device.id, space=space, coefficients=calibration.to_dict(), fitted_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["device_id", "space"],
            set_={"coefficients": stmt.excluded.coefficients, "fitted_at": stmt.excluded.fitted_at},
        )
        with self.transaction(connection) as conn:
            conn.execute(stmt)

    def calibrations(self, device: Device) -> dict[str, Calibration]:
        query = select(CalibrationRow).where(CalibrationRow.device_id == device.id)
        with Session(self.engine) as session:
            return {r.space: Calibration.from_dict(r.coefficients) for r in session.scalars(query)}

    def calibration(self, device: Device, space: str) -> Calibration | None:
        return self.calibrations(device).get(space)


def measurement_values(
    device_id: int,
    spec: OpSpec,
    m: Measurement,
    profiler_version: str,
    created_at: datetime | None,
) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "op_key": spec.key,
        "opspec": spec.to_dict(),
        "median_ms": m.median_ms,
        "mean_ms": m.mean_ms,
        "p10_ms": m.p10_ms,
        "p90_ms": m.p90_ms,
        "std_ms": m.std_ms,
        "n": m.n,
        "warmup": m.warmup,
        "peak_memory_bytes": m.peak_memory_bytes,
        "samples_ms": list(m.samples_ms),
        "extra": m.extra,
        "profiler_version": profiler_version,
        "created_at": created_at or utcnow(),
    }


def _unique(specs: Sequence[OpSpec]) -> list[OpSpec]:
    return list({s.key: s for s in specs}.values())


def _safe(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
