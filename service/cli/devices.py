"""`hwnas devices ...`: who owns each device name, and sharing a device with another tenant (its
jobs may then ask the device's agents to profile it and to time their models)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from lut.store import DeviceNotFound
from service.cli.common import (
    UsageProblem,
    open_store,
    print_json_line,
    stdout,
    user_errors,
)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "devices",
        help="device owners and sharing",
        description="Every device name belongs to one tenant: the first to register an agent "
        "under it, or the operator's (the admin key's tenant, default) when profiled from the "
        "command line. Only the owner's agents measure it; sharing lets another tenant's jobs "
        "use them.",
    )
    devices_sub = parser.add_subparsers(dest="devices_command", metavar="DEVICES_COMMAND")
    devices_sub.required = True

    p = devices_sub.add_parser("list", help="every device name, its owner and its shares")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=run_list)

    for name, verb, handler in (
        ("share", "let TENANT's jobs use", run_share),
        ("unshare", "stop letting TENANT's jobs use", run_unshare),
    ):
        p = devices_sub.add_parser(name, help=f"{verb} the agents of device NAME")
        p.add_argument("name", metavar="NAME", help="device name")
        p.add_argument("--tenant", required=True, help="the other tenant")
        p.set_defaults(handler=handler)


def run_list(args: argparse.Namespace) -> int:
    store = open_store()
    backends: dict[str, list[str]] = {}
    for device in store.devices():
        backends.setdefault(device.name, []).append(device.backend)
    owners, shares = store.device_owners(), store.device_shares()
    names = sorted(set(owners) | set(backends))
    if args.json:
        for name in names:
            print_json_line(
                {
                    "device": name,
                    "owner": owners.get(name),
                    "shared_with": shares.get(name, []),
                    "backends": sorted(set(backends.get(name, []))),
                }
            )
        return 0
    table = Table("device", "owner", "shared with", "LUT backends")
    for name in names:
        table.add_row(
            name,
            owners.get(name, "?"),
            ", ".join(shares.get(name, [])) or "—",
            ", ".join(sorted(set(backends.get(name, [])))) or "none (deleted)",
        )
    stdout.print(table if names else "no devices yet: run `hwnas profile` or start an agent")
    return 0


def run_share(args: argparse.Namespace) -> int:
    store = open_store()
    _check_tenant(args.tenant)
    with user_errors():
        try:
            added = store.share_device(args.name, args.tenant)
        except DeviceNotFound as exc:
            raise UsageProblem(f"{exc}; see `hwnas devices list`") from None
    owner = store.device_owner(args.name)
    state = "now shared" if added else "already shared"
    stdout.print(f"device {args.name} (tenant {owner}'s) is {state} with tenant {args.tenant}")
    return 0


def run_unshare(args: argparse.Namespace) -> int:
    store = open_store()
    if store.device_owner(args.name) is None:
        raise UsageProblem(f"unknown device {args.name!r}; see `hwnas devices list`")
    if not store.unshare_device(args.name, args.tenant):
        raise UsageProblem(f"device {args.name} is not shared with tenant {args.tenant}")
    stdout.print(f"device {args.name} is no longer shared with tenant {args.tenant}")
    return 0


def _check_tenant(tenant: str) -> None:
    import re

    from service.auth import TENANT_PATTERN

    if not re.match(TENANT_PATTERN, tenant):
        raise UsageProblem(
            f"bad tenant {tenant!r}: 1-64 letters, digits, '_', '.', '-', starting alphanumeric"
        )
