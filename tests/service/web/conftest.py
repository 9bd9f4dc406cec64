"""The dashboard's fixtures: one real server with a local worker and a synthetic LUT per test
module, Debian's chromium driven by Playwright, and where screenshots go (HWNAS_TEST_ARTIFACTS,
else a directory under pytest's tmp dir)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.fixtures import (
    Server,
    service_env,
    synthetic_server,
)

CHROMIUM = Path("/usr/bin/chromium")
DEVICE = "cpu-synth"
# the synthetic LUT is profiled for the test dataset's grey 3-class images
DEVICE_SPACE = "fbnet-tiny@c1_n3"


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`hwnas serve` with one local worker and a synthetic LUT for the device `cpu-synth`."""
    home = tmp_path_factory.mktemp("dashboard") / "home"
    env = service_env(home, HWNAS_WORKERS="1", OMP_NUM_THREADS="1")
    with synthetic_server(env, DEVICE, num_classes=3) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium from Debian's package (no browser download at run time)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context per test (its own session storage), failing on page errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"script errors on the page: {errors}"


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pages' screenshots go: HWNAS_TEST_ARTIFACTS, else under pytest's tmp dir."""
    chosen = os.environ.get("HWNAS_TEST_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("dashboard-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
