"""CPU seconds by process kind over a stretch of time, from /proc: every process's user+system
time at the start and the end, classified by its command line (Ray's daemons, Ray's worker
processes, the `hwnas worker` driver) where it belongs to the configuration measured, and the
machine's busy time from /proc/stat, so what other work on a shared machine used is the rest."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
OTHER = "other processes"  # not the measured configuration's: other work on the machine
# (kind, a piece of the command line that names it), first match wins; Ray sets its workers'
# titles to `ray::<task>` (`ray::IDLE` between tasks) and its agents' to `ray::<Agent>`
KINDS = (
    ("gcs_server", "gcs_server"),
    ("raylet", "/raylet"),
    ("dashboard and agents", "dashboard"),
    ("dashboard and agents", "DashboardAgent"),
    ("runtime_env agent", "RuntimeEnvAgent"),
    ("log_monitor", "log_monitor"),
    ("autoscaler monitor", "autoscaler/_private/monitor"),
    ("ray client server", "ray.util.client.server"),
    ("ray workers (units)", "ray::"),
    ("ray workers (units)", "default_worker.py"),
    ("hwnas worker (driver)", "service.cli worker"),
)


def kind_of(command: str) -> str:
    """A measured process's kind from its command line before its options (a raylet's options
    name the dashboard agent's command); `measured (other)` for none of KINDS."""
    program = command.split(" --", 1)[0]
    return next((kind for kind, part in KINDS if part in program), "measured (other)")


@dataclass
class Snapshot:
    """Each process's (kind, CPU seconds, CPU seconds of its children it has reaped), keyed by
    (pid, start time) so a reused pid is another process; and the machine's busy seconds."""

    processes: dict[tuple[int, int], tuple[str, float, float]] = field(default_factory=dict)
    machine_s: float = 0.0


def snapshot(groups: set[int]) -> Snapshot:
    """Every process now: by kind those in one of the process `groups` or started by one that
    is (Ray's workers lead groups of their own, under their node's raylet), the rest as OTHER."""
    taken = Snapshot(machine_s=_machine_busy_s())
    found: dict[int, tuple[list[str], str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        found[int(entry.name)] = (stat[stat.rindex(")") + 2 :].split(), command)
    for pid, (fields, command) in found.items():
        own = (int(fields[11]) + int(fields[12])) / TICKS_PER_S
        reaped = (int(fields[13]) + int(fields[14])) / TICKS_PER_S
        kind = kind_of(command) if _in_groups(pid, found, groups) else OTHER
        taken.processes[(pid, int(fields[19]))] = (kind, own, reaped)
    return taken


def _in_groups(pid: int, found: dict[int, tuple[list[str], str]], groups: set[int]) -> bool:
    while pid in found:
        fields = found[pid][0]
        if int(fields[2]) in groups:
            return True
        pid = int(fields[1])
    return False


def cpu_by_kind(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds each kind used between the snapshots (a process that started between them
    counts from zero; one that ended is lost, unless its parent reaped it: then its time is in
    `reaped children` beside the parent's); the machine's busy seconds, and OTHER as the rest."""
    used: Counter[str] = Counter()
    for key, (kind, own, reaped) in after.processes.items():
        _, own_then, reaped_then = before.processes.get(key, (kind, 0.0, 0.0))
        used[kind] += own - own_then
        if kind != OTHER:
            used["reaped children"] += reaped - reaped_then
    measured = sum(v for k, v in used.items() if k != OTHER)
    machine = after.machine_s - before.machine_s
    used[OTHER] = max(machine - measured, 0.0)
    return {kind: round(seconds, 2) for kind, seconds in used.items()} | {
        "machine": round(machine, 2)
    }


def _machine_busy_s() -> float:
    """All cores' busy time since boot: /proc/stat's user, nice, system, irq, softirq, steal."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_S
