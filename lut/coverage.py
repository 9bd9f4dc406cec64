"""Coverage: how much of a set of OpSpecs (a search space's) a device LUT holds, and what is
missing — the one check that profiling, jobs, agents' tasks and `hwnas lut show` share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lut.opspec import OpSpec
from lut.store import Device, LutStore


@dataclass(frozen=True)
class Coverage:
    """`total` distinct non-identity specs, the `missing` ones, and whether the device has its
    fixed costs (the predictor needs them too)."""

    total: int
    missing: list[OpSpec]
    fixed_costs: bool

    @property
    def complete(self) -> bool:
        return not self.missing and self.fixed_costs

    @property
    def measured(self) -> int:
        return self.total - len(self.missing)

    def lacks(self) -> str:
        """What the LUT lacks in a few words ("3 LUT entries", "fixed costs"), "" if nothing."""
        if self.missing:
            return f"{len(self.missing)} LUT entries"
        return "" if self.fixed_costs else "fixed costs"


def coverage(store: LutStore, device: Device, specs: Sequence[OpSpec]) -> Coverage:
    """The device's coverage of `specs`, read fresh from the store."""
    missing = store.missing(device, specs)
    total = len({s.key for s in specs if not s.is_identity})
    fresh = store.device(device.id)
    return Coverage(total=total, missing=missing, fixed_costs=fresh.fixed_costs is not None)
