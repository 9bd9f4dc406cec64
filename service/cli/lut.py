"""`hwnas lut ...`: list, show, export, import and calibrate device LUTs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from lut.store import Device, LutStore
from service.cli.common import (
    UsageProblem,
    add_tenant_argument,
    open_store,
    print_json_line,
    reference_note,
    stdout,
    user_errors,
)


def register(sub: Any) -> None:
    parser = sub.add_parser("lut", help="list, show, export, import and calibrate LUTs")
    lut_sub = parser.add_subparsers(dest="lut_command", metavar="LUT_COMMAND")
    lut_sub.required = True

    p = lut_sub.add_parser("list", help="every device LUT in the database")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=run_list)

    p = lut_sub.add_parser("show", help="one device's LUT: fingerprint, fixed costs, entries")
    _device_args(p)
    p.add_argument("--space", help="also report coverage: which ops of SPACE are missing")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler=run_show)

    p = lut_sub.add_parser("export", help="write a device's LUT as versioned JSON")
    _device_args(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    p.set_defaults(handler=run_export)

    p = lut_sub.add_parser("import", help="import a LUT JSON file (checked whole first)")
    p.add_argument("file", type=Path, help="a file written by `hwnas lut export`")
    p.add_argument("--as", dest="name", help="store it under this device name")
    p.add_argument("--replace", action="store_true", help="overwrite entries already present")
    add_tenant_argument(p)
    p.set_defaults(handler=run_import)

    from service.cli.calibrate import register as register_calibrate

    register_calibrate(lut_sub)


def _device_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", required=True, help="device name")
    parser.add_argument("--backend", help="pick the LUT of this backend when a device has several")


def resolve(store: LutStore, args: argparse.Namespace) -> Device:
    with user_errors():
        return store.resolve_device(args.device, args.backend)


def run_list(args: argparse.Namespace) -> int:
    store = open_store()
    devices = store.devices()
    if args.json:
        for d in devices:
            print_json_line(_device_summary(store, d))
        return 0
    table = Table("device", "backend", "runtime", "threads", "ops", "created")
    for d in devices:
        fp = d.fingerprint
        table.add_row(
            d.name,
            d.backend,
            str(fp.get("runtime_version", "?")),
            str(fp.get("threads", "?")),
            str(store.count_measurements(d)),
            d.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    stdout.print(table if devices else "no LUTs yet: run `hwnas profile` first")
    return 0


def _device_summary(store: LutStore, device: Device) -> dict[str, Any]:
    return {
        "device": device.name,
        "backend": device.backend,
        "id": device.id,
        "fingerprint": device.fingerprint,
        "fixed_costs": device.fixed_costs.to_dict() if device.fixed_costs else None,
        "calibrations": {k: v.to_dict() for k, v in store.calibrations(device).items()},
        "ops": store.count_measurements(device),
        "created_at": device.created_at.isoformat(),
    }


def run_show(args: argparse.Namespace) -> int:
    store = open_store()
    device = resolve(store, args)
    entries = store.entries(device)
    missing = _coverage(store, device, args.space) if args.space else None
    if args.json:
        summary = _device_summary(store, device)
        summary["entries"] = [
            {
                "key": k,
                "op": e.spec.short(),
                "opspec": e.spec.to_dict(),
                **e.measurement.to_dict(samples=False),
            }
            for k, e in entries.items()
        ]
        if missing is not None:
            summary["missing"] = [s.to_dict() for s in missing]
        print_json_line(summary)
        return 0
    _print_header(store, device)
    table = Table("op", "median ms", "p10", "p90", "cv", "n", "peak MB", title="entries")
    for entry in entries.values():
        m = entry.measurement
        peak = f"{m.peak_memory_bytes / 1e6:.1f}" if m.peak_memory_bytes else "-"
        table.add_row(
            entry.spec.short(),
            f"{m.median_ms:.4f}",
            f"{m.p10_ms:.4f}",
            f"{m.p90_ms:.4f}",
            f"{m.cv:.1%}",
            str(m.n),
            peak,
        )
    stdout.print(table)
    if missing is not None:
        stdout.print(f"coverage of {args.space}: {len(missing)} op(s) missing")
        for spec in missing:
            stdout.print(f"  missing: {spec.short()}")
    return 0


def _coverage(store: LutStore, device: Device, space_text: str) -> list[Any]:
    from lut.coverage import coverage
    from search.spaces.base import space_from_string

    with user_errors():
        space = space_from_string(space_text)
    return coverage(store, device, space.distinct_opspecs()).missing


def _print_header(store: LutStore, device: Device) -> None:
    stdout.print(
        f"[bold]{device.label}[/] — LUT #{device.id}, {store.count_measurements(device)} ops"
    )
    for key, value in device.fingerprint.items():
        stdout.print(f"  {key}: {value}")
    if device.fixed_costs:
        f = device.fixed_costs
        stdout.print(
            f"  fixed costs: {f.call_overhead_ms * 1000:.1f} µs/call, "
            f"{f.per_mb_ms * 1000:.1f} µs/MB, {f.between_blocks_ms * 1000:.1f} µs between blocks"
            + reference_note(f)
        )
    for space, c in store.calibrations(device).items():
        stdout.print(
            f"  calibration {space}: alphas {c.alphas}, {c.beta * 1000:.1f} µs/op + "
            f"{c.gamma * 1000:.1f} µs (n={c.n_points}, MAPE {c.mape_before:.1f}% → {c.mape_after:.1f}%"
            + (
                f"; form {c.form}, leave-one-out {c.mape_loo:.1f}%"
                if c.mape_loo is not None
                else ""
            )
            + ")"
        )


def run_export(args: argparse.Namespace) -> int:
    from lut.exchange import write_lut_file

    store = open_store()
    device = resolve(store, args)
    try:
        count = write_lut_file(store, device, args.output)
    except OSError as exc:
        raise UsageProblem(f"cannot write {args.output}: {exc.strerror}") from None
    stdout.print(f"wrote {count} op(s) of {device.label} to {args.output}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from lut.exchange import import_lut, read_lut_file

    with user_errors():
        parsed = read_lut_file(args.file)
    store = open_store()
    with user_errors():
        device, added = import_lut(
            store, parsed, name=args.name, replace=args.replace, owner=args.tenant
        )
    skipped = len(parsed.measurements) - added
    stdout.print(
        f"imported {added} op(s) into {device.label}"
        + (f", {skipped} already present (use --replace to overwrite)" if skipped else "")
    )
    return 0
