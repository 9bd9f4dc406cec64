"""Where a job's search units run: in the worker's own process (the embedded default, the
pipeline's own calls), or as Ray tasks on a cluster (`ray_executor`, only with HWNAS_RAY_ADDRESS
set; nothing else imports Ray)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from service.worker.executors.resources import UnitResources

if TYPE_CHECKING:
    from service.worker.units import SearchUnit, UnitResult


class ClusterUnavailable(Exception):
    """The Ray cluster at the configured address cannot be used (not installed, unreachable)."""


class ResourcesUnavailable(ClusterUnavailable):
    """No node of the cluster has the resources one unit declares, so Ray would leave the units
    pending for ever."""


class UnitsFailed(Exception):
    """Units that failed for good: unit name → one-line reason."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"{name}: {why}" for name, why in failures.items()))


def run_on_ray(
    address: str,
    first: Sequence[SearchUnit],
    side_by_side: Sequence[SearchUnit],
    *,
    resources: UnitResources,
    check_cancelled: Callable[[], None],
) -> list[UnitResult]:
    """`ray_executor.run_units`, imported only now; ClusterUnavailable when Ray is missing."""
    try:
        from service.worker.executors import ray_executor
    except ImportError as exc:
        raise ClusterUnavailable(
            f"HWNAS_RAY_ADDRESS is set but Ray cannot be imported ({exc}); install the extra: "
            "pip install 'hwnas[ray]'"
        ) from None
    return ray_executor.run_units(
        address, first, side_by_side, resources=resources, check_cancelled=check_cancelled
    )
