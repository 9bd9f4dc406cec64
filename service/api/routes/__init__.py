"""One router per resource, each with its prefix and tags; `ROUTERS` is what the app mounts."""

from service.api.routes import agents, datasets, devices, health, jobs, keys, luts, models

ROUTERS = [r.router for r in (health, keys, datasets, jobs, models, agents, devices, luts)]
