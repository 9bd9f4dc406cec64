"""One router per resource, each with its prefix and tags; `ROUTERS` is what the app mounts."""

from service.api.routes import (
    agents,
    datasets,
    device_views,
    devices,
    health,
    job_views,
    jobs,
    keys,
    luts,
    models,
)

ROUTERS = [
    r.router
    for r in (health, keys, datasets, jobs, job_views, models, agents, devices, device_views, luts)
]
