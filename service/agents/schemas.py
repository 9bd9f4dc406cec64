"""Request and response schemas of /agents, /devices and /luts: every field bounded, unknown
fields refused (the statistics of a measurement are recomputed from its raw samples)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from lut.opspec import ACTIVATIONS, DTYPES, OP_TYPES
from service.schemas import Schema

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$"
HEX32 = r"^[0-9a-f]{32}$"
DeviceName = Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN)]
TaskId = Annotated[str, Field(min_length=32, max_length=32, pattern=HEX32)]
Scalar = Annotated[str, Field(max_length=500)] | int | float | bool | None
FingerprintKey = Annotated[str, Field(min_length=1, max_length=64)]
Fingerprint = Annotated[dict[FingerprintKey, Scalar], Field(min_length=1, max_length=64)]
Extra = Annotated[dict[Annotated[str, Field(max_length=64)], Any], Field(max_length=64)]
Milliseconds = Annotated[float, Field(ge=0, le=1e7, allow_inf_nan=False)]

OpType = Literal[OP_TYPES]  # type: ignore[valid-type]
Activation = Literal[ACTIVATIONS]  # type: ignore[valid-type]
DType = Literal[DTYPES]  # type: ignore[valid-type]


class OpSpecBody(Schema):
    """An OpSpec (lut/opspec.py) in its canonical JSON form."""

    op: OpType
    in_channels: int = Field(ge=1, le=65536)
    out_channels: int = Field(ge=1, le=65536)
    height: int = Field(1, ge=1, le=8192)
    width: int = Field(1, ge=1, le=8192)
    batch: int = Field(1, ge=1, le=4096)
    kernel: int = Field(1, ge=1, le=31)
    stride: int = Field(1, ge=1, le=16)
    expansion: float = Field(1.0, gt=0, le=64, allow_inf_nan=False)
    groups: int = Field(1, ge=1, le=65536)
    activation: Activation = "relu"
    se: bool = False
    dtype: DType = "fp32"


class MeasurementBody(Schema):
    """Raw per-run latencies; the server computes median, percentiles and spread from them."""

    samples_ms: list[Milliseconds] = Field(min_length=1, max_length=20000)
    warmup: int = Field(0, ge=0, le=10_000_000)
    peak_memory_bytes: int | None = Field(None, ge=0, le=1 << 50)
    extra: Extra = Field(default_factory=dict)


class FixedCostsBody(Schema):
    call_overhead_ms: Milliseconds
    per_mb_ms: Milliseconds
    between_blocks_ms: Milliseconds = 0.0


class OpResult(Schema):
    opspec: OpSpecBody
    measurement: MeasurementBody


class TaskResults(Schema):
    """Exactly one of: OpSpec measurements, fixed costs, a whole model's measurement, an error."""

    measurements: list[OpResult] = Field(default_factory=list, max_length=512)
    profiler_version: str = Field("1", min_length=1, max_length=20)
    fixed_costs: FixedCostsBody | None = None
    model: MeasurementBody | None = None
    error: str | None = Field(None, min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _exactly_one(self) -> TaskResults:
        given = [
            name
            for name, value in (
                ("measurements", self.measurements),
                ("fixed_costs", self.fixed_costs),
                ("model", self.model),
                ("error", self.error),
            )
            if value
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of measurements, fixed_costs, model, error"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class ResultAck(Schema):
    task_id: str = Field(max_length=32)
    status: Literal["pending", "claimed", "done", "failed"]
    added: int = Field(ge=0, le=512, description="OpSpec rows that were new")


class AgentRegister(Schema):
    name: DeviceName
    fingerprint: Fingerprint = Field(description="the profiler backend's fingerprint")

    @model_validator(mode="after")
    def _has_backend(self) -> AgentRegister:
        backend = self.fingerprint.get("backend")
        if not isinstance(backend, str) or not 1 <= len(backend) <= 50:
            raise ValueError("fingerprint.backend must be a string of 1 to 50 characters")
        return self


class LutRef(Schema):
    id: int = Field(ge=1)
    name: str = Field(max_length=100)
    backend: str = Field(max_length=50)
    fingerprint_hash: str = Field(max_length=40)


class AgentRegistered(Schema):
    agent_id: str = Field(max_length=32)
    device: LutRef
    heartbeat_s: float = Field(gt=0, le=3600, description="send a heartbeat at least this often")


class Heartbeat(Schema):
    task_id: TaskId | None = Field(None, description="the task being worked on (lease renewed)")


class HeartbeatAck(Schema):
    ok: bool
    pending_tasks: int = Field(ge=0, le=1 << 31)


class ClaimedTask(Schema):
    id: str = Field(max_length=32)
    kind: Literal["opspecs", "fixed_costs", "model"]
    attempt: int = Field(ge=0, le=1 << 31)
    specs: list[OpSpecBody] | None = Field(None, max_length=512)
    format: str | None = Field(None, max_length=20)
    input_shape: list[Annotated[int, Field(ge=1, le=8192)]] | None = Field(None, max_length=8)


class ClaimResponse(Schema):
    task: ClaimedTask | None


class AgentPublic(Schema):
    id: str = Field(max_length=32)
    name: str = Field(max_length=100)
    device_id: int = Field(ge=1)
    backend: str = Field(max_length=50)
    tenant: str = Field(max_length=100)
    online: bool
    created_at: datetime
    last_seen_at: datetime


class AgentList(Schema):
    agents: list[AgentPublic] = Field(max_length=100_000)


class SpaceCoverage(Schema):
    space: str = Field(max_length=200)
    total: int = Field(ge=0, le=1 << 31)
    missing: int = Field(ge=0, le=1 << 31)
    complete: bool = Field(description="every op measured and the fixed costs known")


class LutPublic(Schema):
    id: int = Field(ge=1)
    backend: str = Field(max_length=50)
    fingerprint_hash: str = Field(max_length=40)
    fingerprint: dict[str, Any] = Field(max_length=64)
    fixed_costs: dict[str, float] | None = Field(None, max_length=8)
    entries: int = Field(ge=0, le=1 << 31)
    agents_online: int = Field(ge=0, le=1 << 31)
    created_at: datetime
    coverage: list[SpaceCoverage] | None = Field(None, max_length=1000)


class DevicePublic(Schema):
    name: str = Field(max_length=100)
    luts: list[LutPublic] = Field(max_length=10_000)
    agents: list[AgentPublic] | None = Field(None, max_length=10_000)


class DeviceList(Schema):
    devices: list[DevicePublic] = Field(max_length=100_000)


class LutDeviceBody(Schema):
    name: DeviceName
    fingerprint: Fingerprint
    fixed_costs: dict[Annotated[str, Field(max_length=64)], Milliseconds] | None = Field(
        None, max_length=8
    )


class LutMeasurementBody(Schema):
    key: str | None = Field(None, max_length=40)
    opspec: OpSpecBody
    profiler_version: str = Field("unknown", max_length=20)
    created_at: datetime | None = None
    measurement: dict[Annotated[str, Field(max_length=64)], Any] = Field(max_length=32)


class LutEndToEndBody(Schema):
    arch: str = Field(min_length=1, max_length=10_000)
    space: str = Field(min_length=1, max_length=200)
    measurement: dict[Annotated[str, Field(max_length=64)], Any] = Field(max_length=32)


class LutDocument(Schema):
    """The versioned LUT exchange format of lut/exchange.py."""

    format: Literal["hwnas-lut"]
    version: Literal[1]
    exported_at: datetime | None = None
    device: LutDeviceBody
    measurements: list[LutMeasurementBody] = Field(max_length=200_000)
    end_to_end: list[LutEndToEndBody] = Field(default_factory=list, max_length=100_000)
    calibrations: dict[
        Annotated[str, Field(max_length=200)], dict[Annotated[str, Field(max_length=64)], Any]
    ] = Field(default_factory=dict, max_length=1000)


class LutImported(Schema):
    device: LutRef
    added: int = Field(ge=0, le=1 << 31, description="OpSpec rows that were new")
    entries: int = Field(ge=0, le=1 << 31)
