"""Versioned, self-describing JSON import/export of one device's LUT.

    {"format": "hwnas-lut", "version": 1, "exported_at": ISO-8601,
     "device": {"name", "fingerprint", "fixed_costs"},
     "measurements": [{"key", "opspec", "profiler_version", "created_at", "measurement"}],
     "end_to_end": [{"arch", "space", "measurement"}],
     "calibrations": {"<space>": {"alpha", "beta", "gamma", "n_points", ...}}}

Statistics are recomputed from raw samples on import. A file is checked whole before anything is
written, and then written in one transaction: an invalid file imports nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lut.measurement import Measurement
from lut.opspec import OpSpec
from lut.predictor import Calibration, FixedCosts
from lut.store import OPERATOR_TENANT, Device, LutStore, measurement_values

FORMAT = "hwnas-lut"
VERSION = 1


class InvalidLutFile(ValueError):
    """The file is not a valid hwnas LUT; nothing was imported."""


@dataclass(frozen=True)
class ParsedLut:
    name: str
    fingerprint: dict[str, Any]
    fixed_costs: FixedCosts | None
    measurements: list[tuple[OpSpec, Measurement, str, datetime | None]]
    end_to_end: list[tuple[str, str, Measurement]]
    calibrations: dict[str, Calibration]


def export_lut(store: LutStore, device: Device) -> dict[str, Any]:
    entries = store.entries(device)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "device": {
            "name": device.name,
            "fingerprint": device.fingerprint,
            "fixed_costs": device.fixed_costs.to_dict() if device.fixed_costs else None,
        },
        "measurements": [
            {
                "key": key,
                "opspec": entry.spec.to_dict(),
                "profiler_version": entry.profiler_version,
                "created_at": entry.created_at.isoformat() if entry.created_at else None,
                "measurement": entry.measurement.to_dict(),
            }
            for key, entry in entries.items()
        ],
        "end_to_end": [
            {
                "arch": arch,
                "space": arch.split("@", 1)[0].split(":", 1)[0],
                "measurement": m.to_dict(),
            }
            for arch, m in store.e2e_measurements(device)
        ],
        "calibrations": {space: c.to_dict() for space, c in store.calibrations(device).items()},
    }


def write_lut_file(store: LutStore, device: Device, path: Path) -> int:
    data = export_lut(store, device)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False))
    tmp.replace(path)
    return len(data["measurements"])


def parse_lut(data: Any) -> ParsedLut:
    """Validate a LUT document completely; raise InvalidLutFile saying where it is wrong."""
    if not isinstance(data, dict):
        raise InvalidLutFile("top level must be a JSON object")
    if data.get("format") != FORMAT:
        raise InvalidLutFile(f"'format' must be {FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != VERSION:
        raise InvalidLutFile(
            f"unsupported version {data.get('version')!r} (this hwnas reads {VERSION})"
        )
    device = _field(data, "device", dict)
    name = _field(device, "name", str)
    if not 1 <= len(name) <= 100:
        raise InvalidLutFile("device.name must have 1 to 100 characters")
    fingerprint = _field(device, "fingerprint", dict)
    if not isinstance(fingerprint.get("backend"), str):
        raise InvalidLutFile("device.fingerprint.backend must be a string")
    fixed = None
    if device.get("fixed_costs") is not None:
        fixed = _wrap("device.fixed_costs", lambda: FixedCosts.from_dict(device["fixed_costs"]))
    return ParsedLut(
        name=name,
        fingerprint=fingerprint,
        fixed_costs=fixed,
        measurements=_parse_measurements(_field(data, "measurements", list)),
        end_to_end=_parse_e2e(data.get("end_to_end", [])),
        calibrations=_parse_calibrations(data.get("calibrations", {})),
    )


def _parse_measurements(items: list[Any]) -> list[tuple[OpSpec, Measurement, str, datetime | None]]:
    parsed = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"measurements[{i}]"
        if not isinstance(item, dict):
            raise InvalidLutFile(f"{where} must be an object")
        spec = _wrap(f"{where}.opspec", lambda item=item: OpSpec.from_dict(item["opspec"]))
        if item.get("key") not in (None, spec.key):
            raise InvalidLutFile(
                f"{where}.key {item['key']!r} does not match its opspec ({spec.key})"
            )
        if spec.key in seen:
            raise InvalidLutFile(f"{where}: op {spec.short()} appears twice")
        seen.add(spec.key)
        m = _wrap(
            f"{where}.measurement", lambda item=item: Measurement.from_dict(item["measurement"])
        )
        version = str(item.get("profiler_version", "unknown"))[:20]
        created = _wrap(
            f"{where}.created_at", lambda item=item: _parse_time(item.get("created_at"))
        )
        parsed.append((spec, m, version, created))
    return parsed


def _parse_e2e(items: Any) -> list[tuple[str, str, Measurement]]:
    if not isinstance(items, list):
        raise InvalidLutFile("'end_to_end' must be a list")
    parsed = []
    for i, item in enumerate(items):
        where = f"end_to_end[{i}]"
        if not isinstance(item, dict):
            raise InvalidLutFile(f"{where} must be an object")
        arch, space = _field(item, "arch", str), _field(item, "space", str)
        m = _wrap(
            f"{where}.measurement", lambda item=item: Measurement.from_dict(item["measurement"])
        )
        parsed.append((arch, space, m))
    return parsed


def _parse_calibrations(items: Any) -> dict[str, Calibration]:
    if not isinstance(items, dict):
        raise InvalidLutFile("'calibrations' must be an object")
    return {
        str(space)[:100]: _wrap(f"calibrations.{space}", lambda c=c: Calibration.from_dict(c))
        for space, c in items.items()
    }


def read_lut_file(path: Path) -> ParsedLut:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InvalidLutFile(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidLutFile(f"{path}: not valid JSON ({exc})") from None
    try:
        return parse_lut(data)
    except InvalidLutFile as exc:
        raise InvalidLutFile(f"{path}: {exc}") from None


def import_lut(
    store: LutStore,
    parsed: ParsedLut,
    *,
    name: str | None = None,
    replace: bool = False,
    owner: str = OPERATOR_TENANT,
) -> tuple[Device, int]:
    """Write a parsed LUT in one transaction. Returns the device and how many ops were added.
    A new device name goes to `owner`; one of another tenant raises DeviceOwned."""
    device = store.register_device(name or parsed.name, parsed.fingerprint, owner=owner)
    rows = [
        measurement_values(device.id, spec, m, version, created)
        for spec, m, version, created in parsed.measurements
    ]
    with store.transaction() as connection:
        if parsed.fixed_costs is not None:
            store.set_fixed_costs(device, parsed.fixed_costs, connection=connection)
        added = store.insert_measurement_rows(rows, replace=replace, connection=connection)
        for arch, space, m in parsed.end_to_end:
            store.add_e2e(device, arch, space, m, connection=connection)
        for space, calibration in parsed.calibrations.items():
            store.set_calibration(device, space, calibration, connection=connection)
    return store.device(device.id), added


def _field(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise InvalidLutFile(f"'{key}' must be a {kind.__name__}")
    return value


def _wrap(where: str, build: Any) -> Any:
    try:
        return build()
    except (KeyError, TypeError, ValueError) as exc:
        message = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InvalidLutFile(f"{where}: {message}") from None


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 string")
    return datetime.fromisoformat(value)
