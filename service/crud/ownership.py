"""Who may measure what, in one place. A device name belongs to one tenant (lut.store: the first
to register it or profile it); only that tenant's agents register under it. They take the
device's own LUT work (ops, fixed costs) and the models of jobs of their tenant or of tenants the
owner shared the device with; a job asks a device's agents for work only if its tenant may use
the device. Registration, claims, model downloads, results and the job stages all ask here.
"""

from __future__ import annotations

from typing import Any

from lut.store import Device, DeviceOwned, LutStore
from service.crud import agents as queue
from service.crud.agents import Agent, Task


class NotYourDevice(PermissionError):
    """An agent acting for a device or task it may not (HTTP 403); the message names neither
    the other tenant nor its jobs."""


TAKEN = "device {name!r} belongs to another tenant; register under another name"


def register_agent(
    store: LutStore, name: str, fingerprint: dict[str, Any], key_id: str, tenant: str
) -> tuple[Device, Agent]:
    """Register the agent of key `key_id` for device `name` (claiming the name for `tenant` if
    it is new). NotYourDevice if another tenant owns the name."""
    try:
        device = store.register_device(name, fingerprint, owner=tenant)
    except DeviceOwned:
        raise NotYourDevice(TAKEN.format(name=name)) from None
    return device, queue.register_agent(store.engine, device, key_id, tenant)


def check_name_free(store: LutStore, name: str, tenant: str) -> None:
    """NotYourDevice if another tenant owns device `name` (before any other check, so that the
    refusal is all another tenant learns about the device)."""
    if store.device_owner(name) not in (None, tenant):
        raise NotYourDevice(TAKEN.format(name=name))


def served_tenants(store: LutStore, agent: Agent) -> frozenset[str]:
    """The tenants whose jobs' models `agent` may time: its own and those its device is shared
    with. NotYourDevice if its tenant does not own the device (an agent registered before
    devices had owners, under a name that went to another tenant)."""
    if store.device_owner(agent.name) != agent.tenant:
        raise NotYourDevice(
            f"device {agent.name!r} belongs to another tenant; agent {agent.id} may not "
            "measure for it: register under another name"
        )
    return frozenset({agent.tenant, *store.device_shares(agent.name).get(agent.name, [])})


def check_task(store: LutStore, agent: Agent, task: Task) -> None:
    """NotYourDevice unless `agent` may take `task` (the rule of queue.claimable_by)."""
    tenants = served_tenants(store, agent)
    if task.device_id != agent.device_id or (task.kind == "model" and task.tenant not in tenants):
        raise NotYourDevice(
            f"task {task.id} is not for this agent: agent {agent.id} measures device "
            f"{agent.name!r} (LUT {agent.device_id}) for its tenant and those it is shared with"
        )


def may_use(store: LutStore, name: str, tenant: str) -> bool:
    """Whether a job of `tenant` may ask device `name`'s agents for work (profiling, timing
    its model). Reading the device's LUT needs no permission: a LUT is a fact about hardware."""
    return store.may_use(name, tenant)


def serving_agents(store: LutStore, device: Device, offline_after_s: float) -> list[Agent]:
    """The online agents of a device LUT that belong to its owner (the ones that take tasks)."""
    owner = store.device_owner(device.name)
    online = queue.online_agents(store.engine, device.id, offline_after_s)
    return [a for a in online if a.tenant == owner]


def not_shared(name: str, tenant: str) -> str:
    """Why a job of `tenant` gets no work done on device `name`, and what to do about it."""
    return (
        f"device {name} belongs to another tenant, who has not shared it with tenant {tenant} "
        f"(its owner can: hwnas devices share {name} --tenant {tenant}, or "
        f"POST /devices/{name}/shares); or run an agent of your own under another name"
    )
