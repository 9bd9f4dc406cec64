"""The dashboard's pages. Each page is a shell rendered on the server (registries' names for the
forms, the ids in the path); its script reads the JSON routes with the API key the browser keeps
in session storage. The pages carry no data, so they need no key; every datum still does."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from service.api.deps import ObjectId
from service.api.routes.devices import DeviceNamePath

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
# the page scripts keep to these: no inline script, no other origin
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(include_in_schema=False)


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context, headers=SECURITY_HEADERS)


def _form_choices() -> dict[str, list[str]]:
    """What the submit form offers: the registries' names (the API checks the values again)."""
    from deploy.formats import format_names
    from search.spaces.base import space_names
    from search.strategies.base import strategy_names

    return {"spaces": space_names(), "strategies": strategy_names(), "formats": format_names()}


@router.get("/", response_class=HTMLResponse)
def jobs_page(request: Request) -> HTMLResponse:
    return _page(request, "jobs.html", page="jobs", **_form_choices())


@router.get("/ui", response_class=RedirectResponse)
def ui_root() -> RedirectResponse:
    return RedirectResponse("/")


@router.get("/ui/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: ObjectId) -> HTMLResponse:
    return _page(request, "job.html", page="job", job_id=job_id)


@router.get("/ui/devices", response_class=HTMLResponse)
def devices_page(request: Request) -> HTMLResponse:
    return _page(request, "devices.html", page="devices")


@router.get("/ui/devices/{name}", response_class=HTMLResponse)
def device_page(request: Request, name: DeviceNamePath) -> HTMLResponse:
    return _page(request, "device.html", page="devices", device=name)


def plotly_script() -> Path:
    """Plotly's bundled plotly.min.js inside the installed `plotly` wheel (no CDN)."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed: pip install plotly")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


@router.get("/ui/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(
        plotly_script(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def mount_dashboard(app: FastAPI) -> None:
    """The pages, their scripts and styles, and Plotly, on `app`."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
