"""One router per resource; the app factory mounts `service.routers.<name>.router` for each."""

ROUTER_MODULES: list[str] = ["health", "keys", "datasets", "jobs", "models"]
ROUTER_MODULES += ["agents", "devices", "luts"]  # profiler agents (session B)
