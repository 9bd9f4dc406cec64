"""The LUT database on real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import json
import multiprocessing
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lut.exchange import InvalidLutFile, export_lut, import_lut, parse_lut, read_lut_file
from lut.measurement import Measurement
from lut.opspec import OpSpec
from lut.predictor import Calibration, FixedCosts
from lut.store import (
    OPERATOR_TENANT,
    DatabaseUnavailable,
    DeviceNotFound,
    DeviceOwned,
    LutStore,
)
from search.spaces.base import space_from_string

FINGERPRINT = {"backend": "onnxruntime", "runtime_version": "1.0", "threads": 1}
SPECS = [s for s in space_from_string("fbnet-tiny").distinct_opspecs() if not s.is_identity][:6]


def _measurement(value: float) -> Measurement:
    return Measurement.from_samples([value, value * 1.01, value * 0.99] * 4, warmup=5)


def test_measurements_are_idempotent_and_cover(db_url: str) -> None:
    store = LutStore(db_url)
    device = store.register_device("laptop", FINGERPRINT)
    assert store.register_device("laptop", FINGERPRINT).id == device.id
    assert store.add_measurement(device, SPECS[0], _measurement(1.0))
    assert not store.add_measurement(device, SPECS[0], _measurement(2.0))
    assert store.lookup(device)[SPECS[0].key].median_ms == pytest.approx(1.0)
    assert store.add_measurement(device, SPECS[0], _measurement(2.0), replace=True)
    assert store.lookup(device)[SPECS[0].key].median_ms == pytest.approx(2.0)
    assert store.missing(device, SPECS) == SPECS[1:]
    identity = OpSpec(op="skip", in_channels=16, out_channels=16, height=28, width=28)
    assert store.missing(device, [identity]) == []  # identities are free, never profiled


def test_raw_samples_are_kept(db_url: str) -> None:
    store = LutStore(db_url)
    device = store.register_device("laptop", FINGERPRINT)
    m = Measurement.from_samples([3.0, 1.0, 2.0, 5.0, 4.0, 2.5], warmup=2, peak_memory_bytes=1234)
    store.add_measurement(device, SPECS[1], m)
    entry = store.entries(device)[SPECS[1].key]
    assert entry.measurement.samples_ms == (3.0, 1.0, 2.0, 5.0, 4.0, 2.5)
    assert entry.measurement.median_ms == 2.75 and entry.measurement.peak_memory_bytes == 1234
    assert entry.spec == SPECS[1]


def test_devices_by_fingerprint(db_url: str) -> None:
    store = LutStore(db_url)
    old = store.register_device("pi", {**FINGERPRINT, "runtime_version": "1.0"})
    new = store.register_device("pi", {**FINGERPRINT, "runtime_version": "2.0"})
    assert old.id != new.id  # a new runtime version is a new LUT
    assert store.resolve_device("pi").id == new.id
    store.register_device("pi", {**FINGERPRINT, "backend": "litert"})
    with pytest.raises(DeviceNotFound, match="several backends"):
        store.resolve_device("pi")
    assert store.resolve_device("pi", "litert").backend == "litert"
    with pytest.raises(DeviceNotFound, match="known devices: pi"):
        store.resolve_device("phone")


def test_export_import_round_trip(db_url: str, tmp_path: Path) -> None:
    store = LutStore(db_url)
    device = store.register_device("laptop", FINGERPRINT)
    store.set_fixed_costs(device, FixedCosts(0.005, 0.1, 0.001))
    for i, spec in enumerate(SPECS):
        store.add_measurement(device, spec, _measurement(0.1 * (i + 1)))
    store.add_e2e(device, "fbnet-tiny@r28_w1_c1_n10:x", "fbnet-tiny@r28_w1_c1_n10", _measurement(1))
    store.set_calibration(
        device, "fbnet-tiny@r28_w1_c1_n10", Calibration({"conv": 1.1}, 0.0, 0.01, 5, 9, 2)
    )
    data = json.loads(json.dumps(export_lut(store, store.device(device.id))))

    other = LutStore(f"sqlite:///{tmp_path / 'other.db'}")
    imported, added = import_lut(other, parse_lut(data))
    assert added == len(SPECS)
    assert imported.fixed_costs == FixedCosts(0.005, 0.1, 0.001)
    assert other.lookup(imported).keys() == store.lookup(device).keys()
    assert other.calibration(imported, "fbnet-tiny@r28_w1_c1_n10").alpha("conv") == 1.1
    assert len(other.e2e_measurements(imported)) == 1
    assert import_lut(other, parse_lut(data))[1] == 0  # nothing new the second time


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda d: d.update(format="other"), "'format' must be"),
        (lambda d: d.update(version=99), "unsupported version"),
        (lambda d: d["measurements"][-1]["opspec"].update(op="lstm"), r"measurements\[5\].opspec"),
        (lambda d: d["measurements"][-1].update(key="deadbeef"), "does not match"),
        (lambda d: d["measurements"][2]["measurement"].update(samples_ms=[]), "non-empty"),
        (lambda d: d["measurements"][3]["measurement"].update(samples_ms=[-1.0]), "non-negative"),
        (lambda d: d["device"].pop("fingerprint"), "'fingerprint' must be"),
    ],
)
def test_corrupt_file_imports_nothing(
    sqlite_url: str, tmp_path: Path, corrupt: object, message: str
) -> None:
    store = LutStore(sqlite_url)
    device = store.register_device("laptop", FINGERPRINT)
    for i, spec in enumerate(SPECS):
        store.add_measurement(device, spec, _measurement(0.1 * (i + 1)))
    data = export_lut(store, device)
    corrupt(data)  # type: ignore[operator]
    path = tmp_path / "bad.lut.json"
    path.write_text(json.dumps(data))
    target = LutStore(f"sqlite:///{tmp_path / 'target.db'}")
    with pytest.raises(InvalidLutFile, match=message):
        import_lut(target, read_lut_file(path))
    assert target.devices() == [] and target.count_measurements() == 0


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text('{"format": "hwnas-lut", "version": 1, "meas')
    with pytest.raises(InvalidLutFile, match="not valid JSON"):
        read_lut_file(path)


def test_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="cannot open database"):
        LutStore("postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(DatabaseUnavailable, match="cannot open database"):
        LutStore(f"sqlite:///{tmp_path / 'dir.db'}")


def _writer(url: str, device_id: int, worker: int, count: int) -> None:
    store = LutStore(url)
    device = store.device(device_id)
    for i in range(count):
        spec = OpSpec(op="conv", in_channels=1 + worker, out_channels=1 + i, height=8, width=8)
        store.add_measurement(device, spec, _measurement(0.01 * (i + 1)))
        # every worker also writes the same shared ops: idempotent inserts must not clash
        shared = OpSpec(op="linear", in_channels=10, out_channels=1 + i)
        store.add_measurement(device, shared, _measurement(0.02))
    store.close()


def test_four_processes_write_one_database(db_url: str) -> None:
    store = LutStore(db_url)
    device = store.register_device("shared", FINGERPRINT)
    per_worker = 40
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_writer, args=(db_url, device.id, w, per_worker)) for w in range(4)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=180)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]  # no "database is locked" anywhere
    assert store.count_measurements(device) == 4 * per_worker + per_worker


def test_migrations_are_idempotent_and_concurrent(db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=LutStore, args=(db_url,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert LutStore(db_url).devices() == []


def test_pooled_measurement_keeps_every_round() -> None:
    def run(samples: list[float], peak: int) -> Measurement:
        pairs = {"nominal_ms": 1.0, "raw_ms": samples, "reference_ms": [1.0] * len(samples)}
        return Measurement.from_samples(
            samples, warmup=3, peak_memory_bytes=peak, extra={"drift_reference": pairs}
        )

    a, b = run([1.0, 1.2, 1.1], 100), run([2.0, 2.2], 300)
    assert Measurement.pooled([a]) is a
    both = Measurement.pooled([a, b])
    assert both.n == 5 and both.median_ms == 1.2 and both.peak_memory_bytes == 300
    assert both.extra["rounds_median_ms"] == [1.1, 2.1]
    assert both.extra["drift_reference"]["raw_ms"] == [1.0, 1.2, 1.1, 2.0, 2.2]
    assert len(both.extra["drift_reference"]["reference_ms"]) == 5


def test_a_device_name_belongs_to_one_tenant_and_is_shared_explicitly(
    db_url: str, tmp_path: Path
) -> None:
    store = LutStore(db_url)
    try:
        mine = store.register_device("pi", FINGERPRINT, owner="lab")
        assert store.device_owner("pi") == "lab"
        # Another LUT of the name (a new runtime version) is the owner's to add, nobody else's.
        newer = {**FINGERPRINT, "runtime_version": "2.0"}
        assert store.register_device("pi", newer, owner="lab").id != mine.id
        for intruder in ("other", OPERATOR_TENANT):
            with pytest.raises(DeviceOwned) as refused:
                store.register_device("pi", {**FINGERPRINT, "host": intruder}, owner=intruder)
            assert refused.value.owner == "lab" and "lab" not in str(refused.value)
        with pytest.raises(DeviceOwned):
            store.register_device("pi", FINGERPRINT)  # the command line is the operator's
        assert len(store.devices("pi")) == 2
        # The operator's own devices: profiled from the command line without a tenant.
        store.register_device("laptop", FINGERPRINT)
        assert store.device_owners() == {"laptop": OPERATOR_TENANT, "pi": "lab"}

        assert not store.may_use("pi", "other")
        assert store.share_device("pi", "other") is True
        assert store.share_device("pi", "other") is False  # idempotent
        assert store.may_use("pi", "other") and store.may_use("pi", "lab")
        assert store.device_shares() == {"pi": ["other"]}
        with pytest.raises(DeviceOwned):  # shared is not owned: still no registering under it
            store.register_device("pi", {**FINGERPRINT, "host": "x"}, owner="other")
        with pytest.raises(ValueError, match="already belongs"):
            store.share_device("pi", "lab")
        with pytest.raises(DeviceNotFound):
            store.share_device("nowhere", "lab")
        assert store.unshare_device("pi", "other") is True
        assert store.unshare_device("pi", "other") is False
        assert not store.may_use("pi", "other")

        # An import cannot take a name either; deleting a LUT leaves the name its owner's.
        path = tmp_path / "pi.lut.json"
        path.write_text(json.dumps(export_lut(store, mine)))
        with pytest.raises(DeviceOwned):
            import_lut(store, read_lut_file(path), owner="other")
        import_lut(store, read_lut_file(path), name="pi-copy", owner="other")
        assert store.device_owner("pi-copy") == "other"
        for device in store.devices("pi"):
            store.delete_device(device)
        with pytest.raises(DeviceOwned):
            store.register_device("pi", FINGERPRINT, owner="other")
    finally:
        store.close()


def test_racing_tenants_get_a_new_name_exactly_once(db_url: str) -> None:
    store = LutStore(db_url)
    winners: list[tuple[str, str]] = []
    lock = threading.Lock()

    def register(tenant: str) -> None:
        for n in range(10):
            try:
                store.register_device(f"race-{n}", {**FINGERPRINT, "host": tenant}, owner=tenant)
            except DeviceOwned:
                continue
            with lock:
                winners.append((f"race-{n}", tenant))

    try:
        threads = [threading.Thread(target=register, args=(t,)) for t in ("a", "b", "c")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(name for name, _ in winners) == sorted(f"race-{n}" for n in range(10))
        for name, tenant in winners:
            assert store.device_owner(name) == tenant
            assert [d.fingerprint["host"] for d in store.devices(name)] == [tenant]
    finally:
        store.close()


def test_migration_gives_existing_devices_and_tasks_their_owners(db_url: str) -> None:
    """A database of revision 0004: a name measured by agents goes to their (earliest) tenant,
    one only profiled from the command line to the operator's; tasks get their job's tenant."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from lut.db import make_engine
    from lut.migrate import MIGRATIONS

    engine = make_engine(db_url)
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    now = datetime.now(UTC)
    meta = sa.MetaData()
    meta.reflect(engine, only=["devices", "agents", "jobs", "agent_tasks"])
    devices, agents, jobs, tasks = (
        meta.tables[t] for t in ("devices", "agents", "jobs", "agent_tasks")
    )
    with engine.begin() as connection:
        for i, name in enumerate(("cli-laptop", "lab-pi", "lab-pi")):
            connection.execute(
                sa.insert(devices).values(
                    id=i + 1,
                    name=name,
                    backend="onnxruntime",
                    fingerprint_hash=f"h{i}",
                    fingerprint={**FINGERPRINT, "n": i},
                    created_at=now,
                )
            )
        for i, tenant in enumerate(("lab", "late")):  # "late" registered after "lab"
            connection.execute(
                sa.insert(agents).values(
                    id=f"{i:032x}",
                    key_id=f"k{i}",
                    tenant=tenant,
                    name="lab-pi",
                    device_id=2 + i,
                    backend="onnxruntime",
                    created_at=now.replace(year=2020 + i),
                    last_seen_at=now,
                )
            )
        connection.execute(
            sa.insert(jobs).values(
                id="j" * 32,
                tenant="lab",
                key_id="k" * 32,
                state="measuring",
                request={},
                progress={},
                cancel_requested=False,
                attempt=1,
                export_files={},
                created_at=now,
                updated_at=now,
            )
        )
        for i, job in enumerate(("j" * 32, None)):
            connection.execute(
                sa.insert(tasks).values(
                    id=f"{i:032x}",
                    dedupe_key=f"d{i}",
                    device_id=2,
                    kind="model" if job else "opspecs",
                    status="pending",
                    payload={},
                    job_id=job,
                    attempts=0,
                    created_at=now,
                )
            )
    engine.dispose()

    store = LutStore(db_url)  # migrates to the newest revision
    try:
        assert store.device_owners() == {"cli-laptop": OPERATOR_TENANT, "lab-pi": "lab"}
        assert store.device_shares() == {}
        with store.engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, tenant FROM agent_tasks ORDER BY id"))
            assert [tenant for _, tenant in rows] == ["lab", None]
    finally:
        store.close()
