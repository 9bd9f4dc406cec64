"""/agents: profiler agents register their device, heartbeat, pull tasks and post results.

Every route but the listing needs an `agent` key, and an agent is reachable only with the key that
registered it. Device ownership (service/crud/ownership.py) decides the rest: a device name
another tenant owns is refused at registration (403), and an agent sees, downloads and posts for
only the tasks it may take (403 for any other).
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request, status
from fastapi.responses import FileResponse

from lut.measurement import Measurement
from lut.opspec import OpSpec
from lut.predictor import FixedCosts
from profilers.agent.wire import PROTOCOL_HEADER, version_problem
from service.api.deps import AgentKey, Reader, SettingsDep, StoreDep, own_agent, unprocessable
from service.config import Settings
from service.crud import agents as queue
from service.crud import ownership
from service.crud.agent_tasks import (
    ResultRejected,
    json_safe,
    micro_models,
    public_task,
    record_failure,
    record_fixed_costs,
    record_measurements,
    record_model_measurement,
    registered_fingerprint,
)
from service.crud.agents import Agent, Task, as_utc
from service.crud.ownership import NotYourDevice
from service.schemas.agents import (
    AGENT_ERRORS,
    ERRORS,
    HEX32,
    SHA256,
    AgentList,
    AgentPublic,
    AgentRegister,
    AgentRegistered,
    ClaimedTask,
    ClaimResponse,
    FixedCostsResult,
    Heartbeat,
    HeartbeatAck,
    LutRef,
    ModelResult,
    OpResults,
    ResultAck,
    TaskResults,
)

router = APIRouter(prefix="/agents", tags=["agents"], responses=ERRORS)
AgentId = Annotated[str, Path(min_length=32, max_length=32, pattern=HEX32)]
TaskIdPath = Annotated[str, Path(min_length=32, max_length=32, pattern=HEX32)]
Sha256Path = Annotated[str, Path(min_length=64, max_length=64, pattern=SHA256)]


def agent_protocol(request: Request) -> int:
    """The protocol version the calling agent speaks (its `X-Hwnas-Agent-Protocol` header; none:
    1, agents before versions); 426 naming both versions when it is not the server's. Read from
    the request rather than declared, so the API's schema stays the same for every version."""
    raw = request.headers.get(PROTOCOL_HEADER)
    version = 1
    if raw is not None:
        if not raw.strip().isdigit() or len(raw.strip()) > 4:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, detail=f"{PROTOCOL_HEADER} must be a version number"
            )
        version = int(raw)
    problem = version_problem(version)
    if problem:
        raise HTTPException(status.HTTP_426_UPGRADE_REQUIRED, detail=problem)
    return version


# On every route an agent calls, after its key is checked.
Speaks = Annotated[int, Depends(agent_protocol)]
MAX_CLAIMS_PER_CALL = 50  # tasks found already covered are finished and skipped, up to this many


def agent_public(agent: Agent, settings: Settings) -> AgentPublic:
    return AgentPublic(
        id=agent.id,
        name=agent.name,
        device_id=agent.device_id,
        backend=agent.backend,
        tenant=agent.tenant,
        online=agent.online(settings.agent_offline_after_s),
        created_at=as_utc(agent.created_at),
        last_seen_at=as_utc(agent.last_seen_at),
    )


@router.post("/register", response_model=AgentRegistered, responses=AGENT_ERRORS)
def register(
    body: AgentRegister,
    principal: AgentKey,
    protocol: Speaks,
    store: StoreDep,
    settings: SettingsDep,
) -> AgentRegistered:
    """Register (or re-register: idempotent) this key's agent for a device name + fingerprint.
    A new fingerprint (other runtime version, threads, CPU) is a new LUT of that device. The
    first registration claims the name for the key's tenant; a name another tenant owns (its
    agents', or profiled from the command line for the operator) is refused (403). A thin
    agent (`conversion: server`) times the server's files: the LUT's fingerprint then names the
    server's converter too."""
    try:
        fingerprint = registered_fingerprint(dict(body.fingerprint))
    except ValueError as exc:
        raise unprocessable(("body", "fingerprint", "backend"), str(exc)) from None
    try:
        ownership.check_name_free(store, body.name, principal.tenant)
        if store.holds_in_network_lut(body.name):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"device {body.name} holds an in-network LUT (hwnas profile --in-network), "
                "which agents do not measure; register under another name",
            )
        device, agent = ownership.register_agent(
            store, body.name, fingerprint, principal.key_id, principal.tenant
        )
    except NotYourDevice as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from None
    return AgentRegistered(
        agent_id=agent.id,
        device=LutRef(
            id=device.id,
            name=device.name,
            backend=device.backend,
            fingerprint_hash=device.fingerprint_hash,
        ),
        heartbeat_s=max(1.0, settings.agent_offline_after_s / 4),
    )


@router.get("", response_model=AgentList)
def list_agents(principal: Reader, store: StoreDep, settings: SettingsDep) -> AgentList:
    """The agents of the caller's tenant (every agent for an admin key)."""
    found = queue.agents(store.engine)
    if principal.scope != "admin":
        found = [a for a in found if a.tenant == principal.tenant]
    return AgentList(agents=[agent_public(a, settings) for a in found])


@router.post("/{agent_id}/heartbeat", response_model=HeartbeatAck, responses=AGENT_ERRORS)
def heartbeat(
    agent_id: AgentId,
    body: Heartbeat,
    principal: AgentKey,
    protocol: Speaks,
    store: StoreDep,
    settings: SettingsDep,
) -> HeartbeatAck:
    agent = own_agent(store, principal, agent_id)
    tenants = _served(store, agent)
    queue.heartbeat(store.engine, agent.id, body.task_id, settings.agent_task_lease_s)
    pending = queue.pending_for(store.engine, agent, tenants)
    return HeartbeatAck(ok=True, pending_tasks=pending)


def _served(store: StoreDep, agent: Agent) -> frozenset[str]:
    try:
        return ownership.served_tenants(store, agent)
    except NotYourDevice as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from None


@router.post("/{agent_id}/tasks/claim", response_model=ClaimResponse, responses=AGENT_ERRORS)
def claim(
    agent_id: AgentId,
    principal: AgentKey,
    protocol: Speaks,
    store: StoreDep,
    settings: SettingsDep,
) -> ClaimResponse:
    """The next task for the agent's device ({"task": null} when there is none); the claim
    holds for `agent_task_lease_s`, renewed by heartbeats naming the task."""
    agent = own_agent(store, principal, agent_id)
    tenants = _served(store, agent)
    queue.heartbeat(store.engine, agent.id, None, settings.agent_task_lease_s)
    for _ in range(MAX_CLAIMS_PER_CALL):
        task = queue.claim_task(
            store.engine, agent, settings.agent_task_lease_s, model_tenants=tenants
        )
        if task is None:
            return ClaimResponse(task=None)
        visible = public_task(store, task)
        if visible is not None:
            return ClaimResponse(task=ClaimedTask.model_validate(visible))
    return ClaimResponse(task=None)


def _task_of(store: StoreDep, agent: Agent, task_id: str) -> Task:
    task = queue.get_task(store.engine, task_id)
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no task {task_id}")
    try:
        ownership.check_task(store, agent, task)
    except NotYourDevice as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from None
    return task


@router.get(
    "/{agent_id}/files/{sha256}",
    response_class=FileResponse,
    responses={**AGENT_ERRORS, 200: {"content": {"application/octet-stream": {}}}},
)
def converted_file(
    agent_id: AgentId,
    sha256: Sha256Path,
    principal: AgentKey,
    protocol: Speaks,
    store: StoreDep,
    settings: SettingsDep,
) -> FileResponse:
    """A file the server converted (an op's micro-model, a fixed-cost probe, a support model),
    by its sha256 as tasks name it. They hold no tenant's data: ops are facts about hardware."""
    own_agent(store, principal, agent_id)
    path = micro_models(settings.artifacts_dir).blob(sha256)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no converted file {sha256}")
    return FileResponse(path, media_type="application/octet-stream", filename=sha256)


@router.get(
    "/{agent_id}/tasks/{task_id}/model",
    response_class=FileResponse,
    responses={**AGENT_ERRORS, 200: {"content": {"application/octet-stream": {}}}},
)
def model_file(
    agent_id: AgentId, task_id: TaskIdPath, principal: AgentKey, protocol: Speaks, store: StoreDep
) -> FileResponse:
    """The exported model file a `model` task asks to time end to end, named after the task
    (never after the job: a shared device's agent belongs to another tenant than the job)."""
    task = _task_of(store, own_agent(store, principal, agent_id), task_id)
    if task.kind != "model":
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"task {task_id} has no model")
    path = str(task.payload["file"])
    if not os.path.isfile(path):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="the model file is gone")
    return FileResponse(path, filename=f"model-{task.id}.{_suffix(path)}")


def _suffix(path: str) -> str:
    return path.rsplit(".", 1)[-1] if "." in path else "bin"


@router.post(
    "/{agent_id}/tasks/{task_id}/release", response_model=ResultAck, responses=AGENT_ERRORS
)
def release(
    agent_id: AgentId, task_id: TaskIdPath, principal: AgentKey, protocol: Speaks, store: StoreDep
) -> ResultAck:
    """Give a claimed task back (the agent's device went away mid-task): it is pending again
    at once, for any agent of the device. Results already posted for it are kept. A task the
    agent no longer holds (done, or claimed by another after its lease ran out) is left as is;
    the answer says its status."""
    agent = own_agent(store, principal, agent_id)
    task = _task_of(store, agent, task_id)
    queue.release_task(store.engine, task.id, agent.id)
    current = queue.get_task(store.engine, task.id) or task
    return ResultAck(task_id=task.id, status=current.status, added=0)  # type: ignore[arg-type]


@router.post(
    "/{agent_id}/tasks/{task_id}/results", response_model=ResultAck, responses=AGENT_ERRORS
)
def post_results(
    agent_id: AgentId,
    task_id: TaskIdPath,
    body: Annotated[TaskResults, Body()],
    principal: AgentKey,
    protocol: Speaks,
    store: StoreDep,
) -> ResultAck:
    """Results of a claimed task: idempotent (posting the same results again changes nothing).
    OpSpecs must be ones the task asked for (422 otherwise); results of another protocol
    version than the header's are refused (426)."""
    problem = version_problem(body.protocol or protocol)
    if problem:
        raise HTTPException(status.HTTP_426_UPGRADE_REQUIRED, detail=problem)
    agent = own_agent(store, principal, agent_id)
    task = _task_of(store, agent, task_id)
    added = 0
    try:
        if isinstance(body, OpResults):
            items = [
                (
                    OpSpec.from_dict(r.opspec.model_dump()),
                    Measurement.from_dict(json_safe(r.measurement.model_dump())),
                )
                for r in body.measurements
            ]
            added = record_measurements(store, agent, task, items, body.profiler_version)
        elif isinstance(body, FixedCostsResult):
            fixed = FixedCosts.from_dict(body.fixed_costs.model_dump())
            record_fixed_costs(store, agent, task, fixed)
        elif isinstance(body, ModelResult):
            measurement = Measurement.from_dict(json_safe(body.model.model_dump()))
            record_model_measurement(store, agent, task, measurement)
        else:
            record_failure(store, agent, task, body.error)
    except NotYourDevice as exc:  # the device was unshared since _task_of looked
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from None
    except (ResultRejected, ValueError) as exc:
        raise unprocessable(("body",), str(exc)) from None
    current = queue.get_task(store.engine, task.id) or task
    return ResultAck(task_id=task.id, status=current.status, added=added)  # type: ignore[arg-type]
