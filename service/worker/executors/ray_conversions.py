"""A thin agent's micro-models converted as Ray tasks: the job worker converts the files its
profiling tasks carry (`service.crud.agent_tasks`), and with a cluster each model a batch
(a chunk of ops, the support models, the fixed costs' probes) lacks is a task of its own that
converts it into the shared artifact store, declaring the unit's resources; the batch's tasks
run side by side, and the agents' task is created once its batch is converted, as embedded.
The measuring stays on the agents."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import ray

from lut.opspec import OpSpec
from profilers.artifacts import Artifact, ArtifactStore
from service.worker.context import JobFailed
from service.worker.executors import ClusterUnavailable, UnitResources, UnitsFailed
from service.worker.executors.ray_executor import (
    MAX_RETRIES,
    check_room,
    connect,
    task_options,
    wait_all,
)

Model = tuple[str, OpSpec | str]  # ("op", its spec) or ("probe", its name)


class RayConvertingStore(ArtifactStore):
    """The artifact store whose missing files are converted by tasks on the cluster at
    `address`; `converted_by` names the host and process that converted each file, and a
    `converted` event each batch's (its format, how many models, the hosts and processes)."""

    def __init__(
        self,
        root: Path,
        address: str,
        resources: UnitResources,
        check_cancelled: Callable[[], None],
        emit: Callable[[dict[str, Any]], None] = lambda event: None,
    ) -> None:
        super().__init__(root)
        self.address, self.resources, self.check_cancelled = address, resources, check_cancelled
        self.emit = emit
        self.converted_by: dict[str, dict[str, Any]] = {}

    def ops(self, specs: Iterable[OpSpec], fmt: str) -> dict[str, Artifact]:
        specs = list(specs)
        self._convert({spec.key: ("op", spec) for spec in specs}, fmt)
        return super().ops(specs, fmt)

    def support(self, fmt: str) -> dict[str, Artifact]:
        from profilers.backends.converted import SUPPORT_SPECS

        self._convert({spec.key: ("op", spec) for spec in SUPPORT_SPECS.values()}, fmt)
        return super().support(fmt)

    def probes(self, fmt: str) -> dict[str, Artifact]:
        from profilers.fixed_costs import probe_names

        self._convert({name: ("probe", name) for name in probe_names()}, fmt)
        return super().probes(fmt)

    def _convert(self, models: dict[str, Model], fmt: str) -> None:
        """The files of `models` this store lacks, converted side by side as tasks."""
        missing = {name: model for name, model in models.items() if self.get(name, fmt) is None}
        if not missing:
            return
        try:
            connect(self.address, self.resources.wait_s)
            check_room(self.address, self.resources)
        except ClusterUnavailable as exc:
            raise JobFailed(str(exc)) from None
        task = ray.remote(_convert_one).options(
            **task_options(self.resources), max_retries=MAX_RETRIES
        )
        refs = [task.remote(str(self.root), name, model, fmt) for name, model in missing.items()]
        names = [f"convert-{name}" for name in missing]
        try:
            results = wait_all(names, refs, self.check_cancelled)
        except UnitsFailed as exc:
            raise JobFailed(f"converting micro-models for the agents failed: {exc}") from None
        for name, done in zip(missing, results, strict=True):
            self.converted_by[name] = done
            self.conversions += 1
            self.conversion_s += float(done["seconds"])
        where = sorted({(done["host"], done["pid"]) for done in results})
        self.emit({"type": "converted", "format": fmt, "models": len(missing), "where": where})


def _convert_one(root: str, name: str, model: Model, fmt: str) -> dict[str, Any]:
    """Model `name` converted into the store at `root` (nothing, if another task or worker
    converted it meanwhile); where and for how long."""
    from profilers.export import op_model, probe_model

    kind, what = model
    store = ArtifactStore(Path(root))
    if kind == "op" and isinstance(what, OpSpec):
        store.ensure(name, fmt, lambda: op_model(what))
    else:
        store.ensure(name, fmt, lambda: probe_model(str(what)))
    return {"host": socket.gethostname(), "pid": os.getpid(), "seconds": store.conversion_s}
