"""What each Ray task of a job declares (CPUs, GPUs, memory), and whether a cluster's nodes have
room for it: Ray leaves a task no node can run pending for ever, so the executor asks first, and
waits `wait_s` for such a node to join (a cluster still starting up) before it gives up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.config import Settings


@dataclass(frozen=True)
class UnitResources:
    """What each Ray task of a job declares to Ray's scheduler (HWNAS_RAY_UNIT_CPUS, _GPUS,
    _MEMORY_MB; 0 GPUs or MiB: none declared), and how long the job waits for its cluster to
    accept it and for a node with that room to join (HWNAS_RAY_WAIT_S)."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_mb: int = 0
    wait_s: float = 60.0

    @classmethod
    def of(cls, settings: Settings) -> UnitResources:
        return cls(
            settings.ray_unit_cpus,
            settings.ray_unit_gpus,
            settings.ray_unit_memory_mb,
            settings.ray_wait_s,
        )

    def wanted(self) -> dict[str, float]:
        """As Ray names the resources of a node: CPU, GPU, memory (bytes)."""
        wanted = {"CPU": self.cpus, "GPU": self.gpus, "memory": self.memory_mb * 1024.0**2}
        return {name: amount for name, amount in wanted.items() if amount > 0}


def missing_room(wanted: dict[str, float], nodes: Sequence[dict[str, float]]) -> str | None:
    """Why none of `nodes` (each one's resources, as Ray names them) can run a task that
    declares `wanted`, in words; None when one can."""
    if any(all(node.get(name, 0) >= amount for name, amount in wanted.items()) for node in nodes):
        return None
    largest = {name: max((node.get(name, 0) for node in nodes), default=0) for name in wanted}
    return (
        f"has room for a unit, which asks for {_amounts(wanted)} (HWNAS_RAY_UNIT_CPUS, "
        f"HWNAS_RAY_UNIT_GPUS, HWNAS_RAY_UNIT_MEMORY_MB); the most any node has: "
        f"{_amounts(largest)}. Ask for less, or add a node that has it"
    )


def _amounts(resources: dict[str, float]) -> str:
    def amount(name: str, value: float) -> str:
        if name == "memory":
            return f"{value / 1024**2:g} MiB memory"
        return f"{value:g} {name}{'s' if value != 1 else ''}"

    return ", ".join(amount(name, value) for name, value in resources.items())
