"""Request and response schemas of /agents, /devices and /luts: every field bounded, unknown
fields refused (the statistics of a measurement are recomputed from its raw samples)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from lut.opspec import ACTIVATIONS, DTYPES, OP_TYPES
from profilers.agent.wire import NAME_PATTERN
from service.auth import TENANT_PATTERN
from service.schemas import Schema


class Strict(Schema):
    """No coercion either: "1.5" is not a number, 1 is not a bool (but 3.0 is the integer 3,
    as in JSON Schema)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _has_backend(fingerprint: dict[str, Any]) -> dict[str, Any]:
    backend = fingerprint.get("backend")
    if not isinstance(backend, str) or not 1 <= len(backend) <= 50:
        raise ValueError("fingerprint.backend must be a string of 1 to 50 characters")
    return fingerprint


Integer = Annotated[int, BeforeValidator(_integral)]


HEX32 = r"^[0-9a-f]{32}$"
SHA256 = r"^[0-9a-f]{64}$"
DeviceName = Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN)]
TaskId = Annotated[str, Field(min_length=32, max_length=32, pattern=HEX32)]
Tenant = Annotated[str, Field(min_length=1, max_length=64, pattern=TENANT_PATTERN)]
Scalar = Annotated[str, Field(max_length=500)] | int | float | bool | None
FingerprintKey = Annotated[str, Field(min_length=1, max_length=64)]
Fingerprint = Annotated[
    dict[FingerprintKey, Scalar],
    Field(
        min_length=1,
        max_length=64,
        json_schema_extra={
            "required": ["backend"],
            "properties": {"backend": {"type": "string", "minLength": 1, "maxLength": 50}},
        },
    ),
    AfterValidator(_has_backend),
]
Extra = Annotated[dict[Annotated[str, Field(max_length=64)], Any], Field(max_length=64)]
Milliseconds = Annotated[float, Field(ge=0, le=1e7, allow_inf_nan=False)]
ReferenceMs = Annotated[float, Field(gt=0, le=1e7, allow_inf_nan=False)] | None

OpType = Literal[OP_TYPES]  # type: ignore[valid-type]
Activation = Literal[ACTIVATIONS]  # type: ignore[valid-type]
DType = Literal[DTYPES]  # type: ignore[valid-type]


class Problem(Strict):
    """An error: one line saying what is wrong."""

    detail: str = Field(max_length=2000)


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body is not valid JSON"},
    401: {"model": Problem, "description": "missing, unknown or revoked API key"},
    403: {
        "model": Problem,
        "description": "the key's scope may not do this, or the device is another tenant's",
    },
    404: {"model": Problem, "description": "no such object (or not the caller's)"},
}
AGENT_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    426: {
        "model": Problem,
        "description": "the agent's protocol version (header X-Hwnas-Agent-Protocol; none is "
        "version 1) is not the server's: the message names both",
    },
}
ProtocolVersion = Annotated[int, Field(ge=1, le=1000)]


class OpSpecBody(Strict):
    """An OpSpec (lut/opspec.py) in its canonical JSON form."""

    op: OpType
    in_channels: Integer = Field(ge=1, le=65536)
    out_channels: Integer = Field(ge=1, le=65536)
    height: Integer = Field(1, ge=1, le=8192)
    width: Integer = Field(1, ge=1, le=8192)
    batch: Integer = Field(1, ge=1, le=4096)
    kernel: Integer = Field(1, ge=1, le=31)
    stride: Integer = Field(1, ge=1, le=16)
    expansion: float = Field(1.0, gt=0, le=64, allow_inf_nan=False)
    groups: Integer = Field(1, ge=1, le=65536)
    activation: Activation = "relu"
    se: bool = False
    dtype: DType = "fp32"


class MeasurementBody(Strict):
    """Raw per-run latencies; the server computes median, percentiles and spread from them."""

    samples_ms: list[Milliseconds] = Field(min_length=1, max_length=20000)
    warmup: Integer = Field(0, ge=0, le=10_000_000)
    peak_memory_bytes: Annotated[int, Field(ge=0, le=1 << 50)] | None = None
    extra: Extra = Field(default_factory=dict)


class StoredMeasurementBody(MeasurementBody):
    """A measurement as LUT files hold it: the statistics too (recomputed on import)."""

    median_ms: Milliseconds | None = None
    mean_ms: Milliseconds | None = None
    p10_ms: Milliseconds | None = None
    p90_ms: Milliseconds | None = None
    std_ms: Milliseconds | None = None
    n: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    ci_rel: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] | None = None


class FixedCostsBody(Strict):
    call_overhead_ms: Milliseconds
    per_mb_ms: Milliseconds
    between_blocks_ms: Milliseconds = 0.0
    reference_ms: ReferenceMs = Field(
        None, description="the drift reference's nominal latency, if the LUT was measured with one"
    )


class OpResult(Strict):
    opspec: OpSpecBody
    measurement: MeasurementBody


class OpResults(Strict):
    kind: Literal["measurements"]
    measurements: list[OpResult] = Field(min_length=1, max_length=512)
    profiler_version: str = Field("1", min_length=1, max_length=20)
    protocol: ProtocolVersion | None = Field(None, description="the agent's protocol version")


class FixedCostsResult(Strict):
    kind: Literal["fixed_costs"]
    fixed_costs: FixedCostsBody
    protocol: ProtocolVersion | None = None


class ModelResult(Strict):
    kind: Literal["model"]
    model: MeasurementBody
    protocol: ProtocolVersion | None = None


class ErrorResult(Strict):
    kind: Literal["error"]
    error: str = Field(min_length=1, max_length=2000)
    protocol: ProtocolVersion | None = None


TaskResults = Annotated[
    OpResults | FixedCostsResult | ModelResult | ErrorResult, Field(discriminator="kind")
]


class ResultAck(Strict):
    task_id: str = Field(max_length=32)
    status: Literal["pending", "claimed", "done", "failed"]
    added: Integer = Field(ge=0, le=512, description="OpSpec rows that were new")


class AgentRegister(Strict):
    name: DeviceName
    fingerprint: Fingerprint = Field(description="the profiler backend's fingerprint")


class LutRef(Strict):
    id: Integer = Field(ge=1)
    name: str = Field(max_length=100)
    backend: str = Field(max_length=50)
    fingerprint_hash: str = Field(max_length=40)


class AgentRegistered(Strict):
    agent_id: str = Field(max_length=32)
    device: LutRef
    heartbeat_s: float = Field(gt=0, le=3600, description="send a heartbeat at least this often")


class Heartbeat(Strict):
    task_id: TaskId | None = Field(None, description="the task being worked on (lease renewed)")


class HeartbeatAck(Strict):
    ok: bool
    pending_tasks: Integer = Field(ge=0, le=1 << 31)


class FileRef(Strict):
    """A model file to download (`GET /agents/{id}/files/{sha256}`, or the task's model route)
    and check before timing it."""

    sha256: str = Field(min_length=64, max_length=64, pattern=SHA256)
    size: Integer = Field(ge=0, le=1 << 40)
    format: str = Field(min_length=1, max_length=20)


FileName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][\w.-]*$")]


class ClaimedTask(Strict):
    id: str = Field(max_length=32)
    kind: Literal["opspecs", "fixed_costs", "model"]
    attempt: Integer = Field(ge=0, le=1 << 31)
    protocol: ProtocolVersion = Field(description="the protocol version the task is written in")
    files: dict[FileName, FileRef] | None = Field(
        None,
        max_length=1100,
        description="the files to time, by op key or probe name, and the support models "
        '("warmup", "reference"; "model" for a model task)',
    )
    specs: list[OpSpecBody] | None = Field(None, max_length=512)
    format: str | None = Field(None, max_length=20)
    input_shape: list[Annotated[Integer, Field(ge=1, le=8192)]] | None = Field(None, max_length=8)
    reference_ms: ReferenceMs = Field(
        None, description="measure paired with the drift reference of this nominal latency"
    )


class ClaimResponse(Strict):
    task: ClaimedTask | None


class AgentPublic(Strict):
    id: str = Field(max_length=32)
    name: str = Field(max_length=100)
    device_id: Integer = Field(ge=1)
    backend: str = Field(max_length=50)
    tenant: str = Field(max_length=100)
    online: bool
    created_at: datetime
    last_seen_at: datetime


class AgentList(Strict):
    agents: list[AgentPublic] = Field(max_length=100_000)


class SpaceCoverage(Strict):
    space: str = Field(max_length=200)
    total: Integer = Field(ge=0, le=1 << 31)
    missing: Integer = Field(ge=0, le=1 << 31)
    complete: bool = Field(description="every op measured and the fixed costs known")


class LutPublic(Strict):
    id: Integer = Field(ge=1)
    backend: str = Field(max_length=50)
    fingerprint_hash: str = Field(max_length=40)
    fingerprint: dict[str, Any] = Field(max_length=64)
    fixed_costs: dict[str, float | None] | None = Field(None, max_length=8)
    entries: Integer = Field(ge=0, le=1 << 31)
    agents_online: Integer = Field(ge=0, le=1 << 31)
    created_at: datetime
    coverage: list[SpaceCoverage] | None = Field(None, max_length=1000)


class DevicePublic(Strict):
    name: str = Field(max_length=100)
    luts: list[LutPublic] = Field(max_length=10_000)
    agents: list[AgentPublic] | None = Field(
        None, max_length=10_000, description="the agents of the caller's tenant (all: admin)"
    )
    access: Literal["owner", "shared", "read"] = Field(
        description="what the caller's tenant may do: owner (its agents measure the device), "
        "shared (its jobs may ask the owner's agents for work), read (read its LUTs)"
    )
    owner: str | None = Field(
        None, max_length=64, description="the owning tenant (shown to the owner and admins)"
    )
    shared_with: list[str] | None = Field(
        None, max_length=10_000, description="tenants it is shared with (owner and admins)"
    )


class ShareBody(Strict):
    tenant: Tenant


class DeviceShares(Strict):
    name: str = Field(max_length=100)
    owner: str = Field(max_length=64)
    shared_with: list[str] = Field(max_length=10_000)


class DeviceList(Strict):
    devices: list[DevicePublic] = Field(max_length=100_000)


class LutDeviceBody(Strict):
    name: DeviceName
    fingerprint: Fingerprint
    fixed_costs: FixedCostsBody | None = None


class LutMeasurementBody(Strict):
    key: str | None = Field(None, max_length=40)
    opspec: OpSpecBody
    profiler_version: str = Field("unknown", max_length=20)
    created_at: str | None = Field(None, max_length=40, description="ISO 8601")
    measurement: StoredMeasurementBody


class LutEndToEndBody(Strict):
    arch: str = Field(min_length=1, max_length=10_000)
    space: str = Field(min_length=1, max_length=10_000, description="the arch's space header")
    measurement: StoredMeasurementBody


class LutDocument(Strict):
    """The versioned LUT exchange format of lut/exchange.py."""

    format: Literal["hwnas-lut"]
    version: Literal[1]
    exported_at: str | None = Field(None, max_length=40, description="ISO 8601")
    device: LutDeviceBody
    measurements: list[LutMeasurementBody] = Field(max_length=200_000)
    end_to_end: list[LutEndToEndBody] = Field(default_factory=list, max_length=100_000)
    calibrations: dict[
        Annotated[str, Field(max_length=200)], dict[Annotated[str, Field(max_length=64)], Any]
    ] = Field(default_factory=dict, max_length=1000)


class LutImported(Strict):
    device: LutRef
    added: Integer = Field(ge=0, le=1 << 31, description="OpSpec rows that were new")
    entries: Integer = Field(ge=0, le=1 << 31)
