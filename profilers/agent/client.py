"""The profiler agent loop: register the device's fingerprint, heartbeat, pull tasks, time them,
post results.

A thin agent (`FileTimer`: ONNX Runtime, LiteRT, or a phone through adb) times the files the
server converted: each task names them by sha256, and they are downloaded once into a local
content-addressed cache. Backends that build what they time on the target (torch, TensorRT
engines) measure OpSpecs themselves (`ProfilerBackend`, the full install).

Posting is idempotent on the server, so a result is simply posted again after a failure. When
the server is away (connection refused, 5xx) the agent waits with exponential backoff and goes on
where it was; a bad key (401/403) or another protocol version (426) stops it with one line.
`stop` (set on SIGINT/SIGTERM) ends it after the op in flight.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from lut.measurement import Measurement
from lut.opspec import OpSpec
from profilers.agent.cache import FileCache
from profilers.agent.poster import MeasurementPoster
from profilers.agent.wire import (
    CONVERSION_FIELD,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    REFERENCE_FILE,
    WARMUP_FILE,
    version_problem,
)
from profilers.protocol import MeasureProtocol
from profilers.timers.base import REFERENCE, WARMUP, FileTimer, example_array

if TYPE_CHECKING:
    from profilers.base import ProfilerBackend

LogFn = Callable[[str], None]
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite"}


class ServerAway(Exception):
    """The server cannot be reached or answered 5xx: retry after a backoff."""


class AgentRejected(Exception):
    """The server refuses this agent (bad key, wrong scope, another protocol version):
    retrying will not help."""


class AgentUnknown(Exception):
    """The server no longer knows this agent (e.g. a fresh database): register again."""


class TargetGone(RuntimeError):
    """The device a bridge drives went away (unplugged, rebooted): the agent gives its task
    back to the queue and waits for the device; nothing about the task itself failed."""


@dataclass(frozen=True)
class AgentOptions:
    server: str
    key: str
    name: str
    poll_s: float = 1.0  # how often an idle agent asks for work
    heartbeat_s: float = 5.0
    min_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    timeout_s: float = 30.0


class Backoff:
    """Exponential: min, 2·min, 4·min … up to max; reset after a success."""

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum, self.maximum, self.current = minimum, maximum, minimum

    def next(self) -> float:
        delay, self.current = self.current, min(self.current * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.current = self.minimum


def measurement_body(m: Measurement) -> dict[str, Any]:
    """What the server needs: raw samples (it recomputes the statistics)."""
    return {
        "samples_ms": list(m.samples_ms),
        "warmup": m.warmup,
        "peak_memory_bytes": m.peak_memory_bytes,
        "extra": m.extra,
    }


class AgentClient:
    """One agent: times with `timer` (the thin agent) or, for runtimes that build on the target,
    with a full profiler `backend`; exactly one of the two is given."""

    def __init__(
        self,
        options: AgentOptions,
        *,
        timer: FileTimer | None = None,
        backend: ProfilerBackend | None = None,
        cache: FileCache | None = None,
        stop: threading.Event | None = None,
        log: LogFn = print,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if (timer is None) == (backend is None):
            raise ValueError("an agent times with a file timer or with a backend, not both")
        if timer is not None and cache is None:
            raise ValueError("a thin agent needs a file cache")
        self.options = options
        self.timer, self.backend, self.cache = timer, backend, cache
        # Whether a LUT this agent creates (its fixed costs) gets a drift reference; tasks of an
        # existing LUT say whether it has one, and the timer follows them.
        self.drift_reference = self._protocol().drift_reference
        self.stop = stop or threading.Event()
        self.log = log
        self.http = httpx.Client(
            base_url=options.server.rstrip("/"),
            headers={
                "Authorization": f"Bearer {options.key}",
                PROTOCOL_HEADER: str(PROTOCOL_VERSION),
            },
            timeout=options.timeout_s,
            transport=transport,
        )
        self.agent_id: str | None = None
        self.current_task: str | None = None
        self.heartbeat_s = options.heartbeat_s  # or less, as the server asks at registration
        self.measured = 0  # ops measured by this process (for logs and benchmarks)
        self._backoff = Backoff(options.min_backoff_s, options.max_backoff_s)
        self.poster = MeasurementPoster(self.post_results, log)
        # The next task is claimed while the last op of the current one is measured, so the
        # claim's round trip does not idle the measuring loop.
        self._claimer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="claim")
        self._next: Future[dict[str, Any] | None] | None = None

    def _protocol(self) -> MeasureProtocol:
        measurer = self.timer if self.timer is not None else self.backend
        assert measurer is not None  # checked in __init__
        return measurer.protocol

    def _use_drift_reference(self, nominal_ms: float | None) -> None:
        if self.timer is not None:
            self.timer.use_drift_reference(nominal_ms)
        elif self.backend is not None:
            self.backend.use_drift_reference(nominal_ms)

    def fingerprint(self) -> dict[str, Any]:
        if self.timer is not None:  # the server converts, and names its converter
            return {**self.timer.fingerprint(), CONVERSION_FIELD: "server"}
        assert self.backend is not None
        return self.backend.fingerprint()

    @property
    def runtime(self) -> str:
        measurer = self.timer if self.timer is not None else self.backend
        return str(getattr(measurer, "name", "?"))

    # -- HTTP ----------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerAway(f"{type(exc).__name__}: {exc}") from None
        self._check(response, path)
        return response

    def _check(self, response: httpx.Response, path: str) -> None:
        if response.status_code in RETRY_STATUSES:
            raise ServerAway(f"HTTP {response.status_code} from {path}")
        if response.status_code == 426:
            raise AgentRejected(_detail(response))
        refused = response.status_code == 401 or (
            response.status_code == 403 and path.endswith("/register")
        )
        if refused:
            raise AgentRejected(f"the server refused the key: {_detail(response)}")
        if response.status_code == 404 and path.endswith(("/heartbeat", "/tasks/claim")):
            raise AgentUnknown(_detail(response))

    def _download(self, path: str, target: Path) -> None:
        """Stream a file from the server into `target`."""
        try:
            with self.http.stream("GET", path) as response:
                self._check(response, path)
                if response.status_code != 200:
                    response.read()
                    raise ValueError(f"cannot download {path}: {_detail(response)}")
                with target.open("wb") as handle:
                    for block in response.iter_bytes(1 << 20):
                        handle.write(block)
        except httpx.TransportError as exc:
            raise ServerAway(f"{type(exc).__name__}: {exc}") from None

    def _agent_path(self, suffix: str) -> str:
        if self.agent_id is None:
            raise AgentUnknown("not registered")
        return f"/agents/{self.agent_id}/{suffix}"

    # -- protocol ------------------------------------------------------------------------
    def register(self) -> None:
        body = {"name": self.options.name, "fingerprint": self.fingerprint()}
        response = self._request("POST", "/agents/register", json=body)
        if response.status_code != 200:
            raise AgentRejected(f"registration refused: {_detail(response)}")
        data = response.json()
        self.agent_id = data["agent_id"]
        self.heartbeat_s = min(self.options.heartbeat_s, float(data["heartbeat_s"]))
        self.log(
            f"registered as agent {self.agent_id} of device {data['device']['name']} "
            f"(LUT {data['device']['id']}, {self.runtime})"
        )

    def heartbeat(self) -> None:
        self._request("POST", self._agent_path("heartbeat"), json={"task_id": self.current_task})

    def claim(self) -> dict[str, Any] | None:
        response = self._request("POST", self._agent_path("tasks/claim"))
        if response.status_code != 200:
            raise AgentRejected(f"claiming a task failed: {_detail(response)}")
        task: dict[str, Any] | None = response.json().get("task")
        return task

    def post_results(self, task_id: str, body: dict[str, Any]) -> None:
        """Post until the server has it (idempotent there); give up only when stopping."""
        body = {**body, "protocol": PROTOCOL_VERSION}
        while True:
            try:
                response = self._request(
                    "POST", self._agent_path(f"tasks/{task_id}/results"), json=body
                )
                if response.status_code >= 400:  # rejected for good: say so and move on
                    self.log(f"result for task {task_id} rejected: {_detail(response)}")
                return
            except ServerAway as exc:
                if self.stop.is_set():
                    return
                delay = self._backoff.next()
                self.log(f"server away ({exc}); posting again in {delay:g} s")
                self.stop.wait(delay)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        """Until `stop` is set. Raises AgentRejected when the server refuses the agent."""
        beat = threading.Thread(target=self._heartbeat_loop, daemon=True)
        beat.start()
        try:
            while not self.stop.is_set():
                self._step()
        finally:
            self.stop.set()
            self._claimer.shutdown(wait=True, cancel_futures=True)
            if not self.poster.close(timeout=self.options.timeout_s):
                self.log("stopping with results not yet posted (they will be measured again)")
            beat.join(timeout=5)
            self.http.close()

    def _step(self) -> None:
        try:
            if self.agent_id is None:
                self.register()
            task = self._next_task()
            self._backoff.reset()
        except TargetGone as exc:
            self._target_gone(None, exc)
            return
        except ServerAway as exc:
            delay = self._backoff.next()
            self.log(f"server away ({exc}); retrying in {delay:g} s")
            self.stop.wait(delay)
            return
        except AgentUnknown:
            self.agent_id = None
            return
        if task is None:
            self.stop.wait(self.options.poll_s)
            return
        self.current_task = task["id"]
        try:
            self.execute(task)
        except ServerAway as exc:  # e.g. fetching a model file: the task's lease runs out
            delay = self._backoff.next()
            self.log(f"server away during task {task['id']} ({exc}); retrying in {delay:g} s")
            self.stop.wait(delay)
        except AgentUnknown:
            self.agent_id = None
        except TargetGone as exc:
            self._target_gone(task["id"], exc)
        finally:
            self.current_task = None

    def _target_gone(self, task_id: str | None, exc: TargetGone) -> None:
        """Give the task (and one claimed ahead) back to the queue, wait for the device."""
        self.log(f"device gone ({exc})" + (f" during task {task_id}" if task_id else ""))
        ahead, self._next = self._next, None
        if ahead is not None:
            with contextlib.suppress(Exception):
                claimed = ahead.result()
                if claimed is not None:
                    self.release(claimed["id"])
        if task_id is not None:
            with contextlib.suppress(ServerAway, AgentUnknown):
                self.release(task_id)
        wait = getattr(self.timer, "wait_until_back", None)
        if wait is not None:
            wait(self.stop, self.log)
        else:
            self.stop.wait(self._backoff.next())

    def release(self, task_id: str) -> None:
        """Hand a claimed task back: it is pending again for any agent of the device."""
        response = self._request("POST", self._agent_path(f"tasks/{task_id}/release"))
        if response.status_code == 200:
            self.log(f"task {task_id} given back to the queue")
        else:
            self.log(f"task {task_id} not given back: {_detail(response)}")

    def _next_task(self) -> dict[str, Any] | None:
        if self._next is None:
            return self.claim()
        future, self._next = self._next, None
        return future.result()

    def _claim_ahead(self) -> None:
        if self._next is None and not self.stop.is_set():
            self._next = self._claimer.submit(self.claim)

    def _heartbeat_loop(self) -> None:
        while not self.stop.wait(self.heartbeat_s):
            if self.agent_id is None:
                continue
            with contextlib.suppress(ServerAway, AgentUnknown, AgentRejected):
                self.heartbeat()  # failures: the main loop notices and reacts

    def execute(self, task: dict[str, Any]) -> None:
        kind = task["kind"]
        problem = version_problem(int(task.get("protocol") or 1), PROTOCOL_VERSION)
        if problem:  # a server that answered our header would not send this
            raise AgentRejected(f"task {task['id']}: {problem}")
        try:
            self._use_support_files(task)
            if kind == "opspecs":
                self._measure_specs(task)
            elif kind == "fixed_costs":
                self._measure_fixed_costs(task)
            elif kind == "model":
                self._measure_model(task)
            else:
                self.post_results(
                    task["id"], {"kind": "error", "error": f"unknown task kind {kind!r}"}
                )
        except (ServerAway, AgentUnknown, AgentRejected, TargetGone):
            raise
        except Exception as exc:  # a runtime that cannot run the op: report it, keep serving
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            self.log(f"task {task['id']} failed: {message}")
            self.post_results(task["id"], {"kind": "error", "error": message})

    # -- files ---------------------------------------------------------------------------
    def file(self, task: dict[str, Any], name: str) -> Path:
        """The task's file `name` from the cache, downloaded first if it is not there."""
        files = task.get("files") or {}
        if name not in files:
            raise ValueError(f"task {task['id']} carries no file {name!r}")
        ref = files[name]
        if self.cache is None:
            raise ValueError("this agent has no file cache")
        source = (
            self._agent_path(f"tasks/{task['id']}/model")
            if name == "model"
            else self._agent_path(f"files/{ref['sha256']}")
        )
        suffix = SUFFIXES.get(ref["format"], f".{ref['format']}")
        return self.cache.fetch(ref["sha256"], suffix, lambda tmp: self._download(source, tmp))

    def _use_support_files(self, task: dict[str, Any]) -> None:
        if self.timer is None:
            return
        files = task.get("files") or {}
        if WARMUP_FILE in files and REFERENCE_FILE in files:
            roles = {WARMUP: WARMUP_FILE, REFERENCE: REFERENCE_FILE}
            self.timer.support_files = lambda role: self.file(task, roles[role])

    def _needs_files(self, task: dict[str, Any]) -> None:
        if self.timer is not None and not task.get("files"):
            raise ValueError(
                "the task carries no files to time: this thin agent needs a server that "
                "converts them (protocol 2)"
            )

    # -- measuring -----------------------------------------------------------------------
    def _measure_specs(self, task: dict[str, Any]) -> None:
        specs = [OpSpec.from_dict(d) for d in task["specs"]]
        self._needs_files(task)
        self._use_drift_reference(task.get("reference_ms"))  # the LUT's unit
        self.log(f"task {task['id']}: measuring {len(specs)} op(s)")
        for index, spec in enumerate(specs, start=1):
            if self.stop.is_set():
                return
            if index == len(specs):
                self._claim_ahead()
            measurement = self.measure_op(task, spec)
            item = {"opspec": spec.to_dict(), "measurement": measurement_body(measurement)}
            self.poster.put(task["id"], item)
            self.measured += 1

    def measure_op(self, task: dict[str, Any], spec: OpSpec) -> Measurement:
        if self.timer is None:
            assert self.backend is not None
            return self.backend.measure_op(spec)
        path = self.file(task, spec.key)
        return self.timer.measure_op_file(path, extra={"converted": False})

    def _measure_fixed_costs(self, task: dict[str, Any]) -> None:
        from profilers.fixed_costs import measure_fixed_costs

        self.log(f"task {task['id']}: measuring fixed costs")
        if self.timer is None:
            from profilers.runner import measure_fixed_costs as measure_with_backend

            assert self.backend is not None
            fixed = measure_with_backend(self.backend, drift_reference=self.drift_reference)
        else:
            self._needs_files(task)
            probes = _TaskProbes(self, task, self.timer)
            fixed = measure_fixed_costs(probes, drift_reference=self.drift_reference)
        self.post_results(task["id"], {"kind": "fixed_costs", "fixed_costs": fixed.to_dict()})

    def _measure_model(self, task: dict[str, Any]) -> None:
        self.log(f"task {task['id']}: measuring the exported {task['format']} model")
        path = self.file(task, "model")
        example = example_array(task["input_shape"])
        self._use_drift_reference(task.get("reference_ms"))
        if self.timer is not None:
            measurement = self.timer.measure_file(path, example)
        else:
            import torch

            measure_file = getattr(self.backend, "measure_file", None)
            if measure_file is None:
                raise ValueError(f"backend {self.runtime} cannot time a model file")
            measurement = measure_file(path, torch.from_numpy(example))
        self.post_results(task["id"], {"kind": "model", "model": measurement_body(measurement)})
        self.log(f"task {task['id']}: {measurement.median_ms:.3f} ms end to end")


class _TaskProbes:
    """A fixed-costs task's files as a `fixed_costs.ProbeTimer` for the agent's timer."""

    def __init__(self, client: AgentClient, task: dict[str, Any], timer: FileTimer) -> None:
        self.client, self.task, self.timer = client, task, timer

    @property
    def protocol(self) -> MeasureProtocol:
        return self.timer.protocol

    def use_drift_reference(self, nominal_ms: float | None) -> None:
        self.timer.use_drift_reference(nominal_ms)

    def measure_drift_reference(self) -> float:
        return self.timer.measure_drift_reference()

    def measure_op(self, spec: OpSpec) -> Measurement:
        return self.timer.measure_op_file(self.client.file(self.task, spec.key))

    def measure_network(self, name: str) -> Measurement:
        return self.timer.time_file(self.client.file(self.task, name))


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return f"HTTP {response.status_code}: {detail or response.text[:200]}"
