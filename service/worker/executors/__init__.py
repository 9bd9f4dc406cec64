"""Where a job's search units, export formats and thin agents' micro-model conversions run: in
the worker's own process (the embedded default), or as Ray tasks on a cluster (`ray_executor`,
`ray_exports`, `ray_conversions`, only with HWNAS_RAY_ADDRESS set; nothing else imports Ray)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.worker.executors.resources import UnitResources

if TYPE_CHECKING:
    from profilers.artifacts import ArtifactStore
    from service.config import Settings
    from service.worker.units import FileSink, JobSink, SearchUnit, UnitResult


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
    with _ray_importable():
        from service.worker.executors import ray_executor
    return ray_executor.run_units(
        address, first, side_by_side, resources=resources, check_cancelled=check_cancelled
    )


def ray_exporter(
    address: str,
    run_dir: Path,
    *,
    resources: UnitResources,
    sink: JobSink | FileSink,
    check_cancelled: Callable[[], None],
) -> Callable[..., dict[str, str]]:
    """`ray_exports.ray_exporter` (each export format a Ray task), imported only now;
    ClusterUnavailable when Ray is missing."""
    with _ray_importable():
        from service.worker.executors import ray_exports
    return ray_exports.ray_exporter(
        address, run_dir, resources=resources, sink=sink, check_cancelled=check_cancelled
    )


def micro_model_store(
    settings: Settings,
    check_cancelled: Callable[[], None],
    emit: Callable[[dict[str, Any]], None],
) -> ArtifactStore:
    """Where the profiling stage converts a thin agent's micro-models: the server's store
    (`agent_tasks.micro_models`); with HWNAS_RAY_ADDRESS set, one whose missing files are
    converted as Ray tasks (`ray_conversions`), each batch's reported through `emit`."""
    from service.crud.agent_tasks import micro_models

    store = micro_models(settings.artifacts_dir)
    if not settings.ray_address:
        return store
    from service.worker.context import JobFailed

    try:
        with _ray_importable():
            from service.worker.executors import ray_conversions
    except ClusterUnavailable as exc:
        raise JobFailed(str(exc)) from None
    return ray_conversions.RayConvertingStore(
        store.root, settings.ray_address, UnitResources.of(settings), check_cancelled, emit
    )


@contextlib.contextmanager
def _ray_importable() -> Iterator[None]:
    try:
        yield
    except ImportError as exc:
        raise ClusterUnavailable(
            f"HWNAS_RAY_ADDRESS is set but Ray cannot be imported ({exc}); install the extra: "
            "pip install 'hwnas[ray]'"
        ) from None
