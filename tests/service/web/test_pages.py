"""The dashboard in a real browser (Debian's headless chromium, driven by Playwright) against a
real server and worker: log in, upload a dataset, submit jobs, watch them finish, the Pareto plot's
points, download the ONNX file, a device's heatmap, a wrong key's message, and a basic
accessibility check (labels, keyboard). Each page's screenshot is written as a test artefact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.fixtures import Server, seed_end_to_end_runs, write_npz
from tests.service.web.conftest import DEVICE, DEVICE_SPACE

JOB_TIMEOUT_MS = 400_000
MISSING_JOB = "0" * 32
FINAL_EVENT = """#event-log li:has-text('state: {"type":"state","state":"done"}')"""


def log_in(page: Any, server: Server, key: str, path: str = "/") -> None:
    page.goto(f"{server.base_url}{path}")
    page.fill("#api-key", key)
    page.press("#api-key", "Enter")  # the keyboard submits the key form
    page.wait_for_selector("#key-state:has-text('using key')")


def submit_job(page: Any, dataset_id: str, budgets: str, formats: tuple[str, ...]) -> str:
    """Fills the submit form (one device, its budgets) and returns the new job's id."""
    page.fill("#job-dataset", dataset_id)
    page.fill("#job-epochs", "2")
    page.fill("#job-child-epochs", "1")
    page.fill("#job-batch", "32")
    page.check(f"input[name=devices][value='{DEVICE}']")
    page.fill(f"input[data-device='{DEVICE}']", budgets)
    for box in page.locator("input[name=export_formats]").all():
        box.set_checked(box.get_attribute("value") in formats)
    page.evaluate("document.getElementById('submit-result').textContent = ''")
    page.click("#submit-job")
    link = page.wait_for_selector("#new-job-link")
    return str(link.get_attribute("href")).rsplit("/", 1)[1]


def wait_until_done(page: Any, server: Server, job_id: str) -> None:
    page.goto(f"{server.base_url}/ui/jobs/{job_id}")
    finished = ", ".join(f"#job[data-state={s}]" for s in ("done", "failed", "cancelled"))
    page.wait_for_selector(finished, timeout=JOB_TIMEOUT_MS)
    state = page.text_content("#job-state")
    assert state == "done", f"job {job_id} ended {state}: {page.text_content('#job-error')}"


def test_a_wrong_or_missing_key_shows_a_message(
    dashboard_server: Server, page: Any, artifacts_dir: Path
) -> None:
    page.goto(f"{dashboard_server.base_url}/")
    assert "Paste an API key" in page.text_content("#message")
    page.fill("#api-key", "hwnas_0000_not-a-key")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#message.error")
    message = page.text_content("#message")
    assert "The API key was not accepted" in message and "invalid" in message.lower()
    assert "Traceback" not in page.content()
    page.screenshot(path=str(artifacts_dir / "wrong-key.png"), full_page=True)


def test_upload_submit_watch_and_download(
    dashboard_server: Server, page: Any, artifacts_dir: Path, tmp_path: Path
) -> None:
    key = dashboard_server.key("user", "lab")
    log_in(page, dashboard_server, key)
    page.set_input_files("#dataset-file", str(write_npz(tmp_path / "squares.npz")))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-result:has-text('Uploaded')")
    assert page.eval_on_selector("#upload-progress", "bar => bar.value") == 100
    dataset_id = page.input_value("#job-dataset")
    assert len(dataset_id) == 32
    exported = submit_job(page, dataset_id, "3", ("onnx",))
    several = submit_job(page, dataset_id, "2, 3", ())
    # the list follows the jobs' states live (event stream, else its refresh)
    page.wait_for_selector(f"#job-{exported} td[data-state]:not([data-state=queued])")
    page.screenshot(path=str(artifacts_dir / "jobs.png"), full_page=True)

    wait_until_done(page, dashboard_server, exported)
    page.wait_for_selector("#card-files")  # the page draws the card last
    page.wait_for_selector(FINAL_EVENT, state="attached")  # the events are replayed
    assert page.locator("#pareto .scatterlayer .point").count() == 1  # one budget, not measured
    assert page.locator("#pareto .shapelayer path").count() == 1  # the budget's line
    layers = page.locator("#layers-table tbody tr").count()
    assert layers == 8 + 2  # fbnet-tiny's searchable layers, the fixed part, the total
    assert page.locator("#probabilities .scatterlayer .trace").count() == 9  # the candidates
    assert "float32" in page.text_content("#card-files")  # the ONNX file's input contract
    with page.expect_download() as download_info:
        page.click("#downloads button[data-file=onnx]")
    downloaded = Path(download_info.value.path())
    with dashboard_server.client(key) as client:
        assert downloaded.read_bytes() == client.get(f"/models/{exported}/onnx").content
    page.screenshot(path=str(artifacts_dir / "job.png"), full_page=True)

    wait_until_done(page, dashboard_server, several)
    # each budget's files and the Pareto table (drawn last)
    page.wait_for_selector("#downloads button[data-file='budget-2.child.pt']")
    for name in ("budget-3.arch.json", "pareto.md"):
        assert page.locator(f"#downloads button[data-file='{name}']").count() == 1
    page.wait_for_selector(FINAL_EVENT, state="attached")  # the events are replayed
    assert page.locator("#pareto .scatterlayer .point").count() == 2  # one per budget
    assert page.locator("#pareto .shapelayer path").count() == 2
    assert page.locator("#progress-table tbody tr").count() == 3  # shared weights, 2 budgets
    page.screenshot(path=str(artifacts_dir / "job-two-budgets.png"), full_page=True)


def test_cancel_from_the_jobs_list(dashboard_server: Server, page: Any, tmp_path: Path) -> None:
    key = dashboard_server.key("user", "lab")
    npz = write_npz(tmp_path / "squares.npz").read_bytes()
    with dashboard_server.client(key) as client:
        dataset = client.post("/datasets", files={"file": ("squares.npz", npz)}).json()["id"]
        body = {"space": "fbnet-tiny", "dataset": dataset, "devices": [DEVICE], "epochs": 200}
        job_id = client.post("/jobs", json={**body, "budgets": {DEVICE: 3.0}}).json()["id"]
    log_in(page, dashboard_server, key)
    page.click(f"#job-{job_id} button:text('Cancel')")
    page.wait_for_selector(f"#job-{job_id} td[data-state=cancelled]", timeout=120_000)
    assert "Cancelling job" in page.text_content("#message")


def test_a_devices_heatmap_and_calibration(
    dashboard_server: Server, page: Any, artifacts_dir: Path
) -> None:
    # after the job tests: a calibration changes the predictions of later searches
    home = Path(dashboard_server.env["HWNAS_HOME"])
    runs = seed_end_to_end_runs(f"sqlite:///{home / 'hwnas.db'}", DEVICE, DEVICE_SPACE)
    log_in(page, dashboard_server, dashboard_server.key("user", "lab"), "/ui/devices")
    page.wait_for_selector(f"#devices-table a:text('{DEVICE}')")
    page.screenshot(path=str(artifacts_dir / "devices.png"), full_page=True)
    page.click(f"#devices-table a:text('{DEVICE}')")
    page.wait_for_selector("#luts table")
    page.fill("#heatmap-space", DEVICE_SPACE)
    page.press("#heatmap-space", "Enter")
    page.wait_for_selector("#heatmap .heatmaplayer")
    assert page.get_attribute("#heatmap", "data-layers") == "8"
    assert "0 candidate op(s) missing" in page.text_content("#heatmap-note")
    page.wait_for_selector("#calibration .scatterlayer .point")
    # the LUT sum and the calibrated prediction of every run (the diagonal has no markers)
    assert page.locator("#calibration .scatterlayer .point").count() == 2 * len(runs)
    assert f"over {len(runs)} runs" in page.text_content("#calibration-note")
    page.screenshot(path=str(artifacts_dir / "device.png"), full_page=True)


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map(e => e.outerHTML)"""
UNFOCUSABLE = """() => [...document.querySelectorAll('a[href], button, input, select')]
  .filter(e => e.tabIndex < 0 || e.disabled).map(e => e.outerHTML)"""


@pytest.mark.parametrize(
    "path", ["/", f"/ui/jobs/{MISSING_JOB}", "/ui/devices", f"/ui/devices/{DEVICE}"]
)
def test_controls_have_labels_and_take_the_keyboard(
    dashboard_server: Server, page: Any, path: str
) -> None:
    log_in(page, dashboard_server, dashboard_server.key("user", "lab"), path)
    page.wait_for_load_state("networkidle")
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(UNFOCUSABLE) == []
    page.reload()  # the key stays in session storage; the walk starts at the top
    page.wait_for_load_state("networkidle")
    reached = set()
    for _ in range(12):  # the skip link, the navigation and the key form come first
        page.keyboard.press("Tab")
        reached.add(
            page.evaluate("document.activeElement.id || document.activeElement.textContent")
        )
    assert {"Skip to content", "Jobs", "Devices", "api-key", "Use key"} <= reached


def test_a_missing_job_is_a_message(dashboard_server: Server, page: Any) -> None:
    log_in(page, dashboard_server, dashboard_server.key("user", "lab"), f"/ui/jobs/{MISSING_JOB}")
    page.wait_for_selector("#message.error")
    assert f"no job {MISSING_JOB}" in page.text_content("#message")


def test_the_pages_need_no_key_but_their_data_does(dashboard_server: Server) -> None:
    page = httpx.get(f"{dashboard_server.base_url}/")
    assert page.status_code == 200 and "hwnas" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    plotly = httpx.get(f"{dashboard_server.base_url}/ui/plotly.min.js")
    assert plotly.status_code == 200 and plotly.headers["content-type"].startswith(
        "text/javascript"
    )
    assert httpx.get(f"{dashboard_server.base_url}/jobs").status_code == 401
    assert httpx.get(f"{dashboard_server.base_url}/ui").headers["location"] == "/"
    bad = httpx.get(f"{dashboard_server.base_url}/ui/jobs/not-a-job-id")
    assert bad.status_code == 422 and "job_id" in bad.text
