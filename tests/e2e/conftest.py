"""Browser fixtures: a real headless Chromium driven by Playwright's sync API.

Chromium comes from the system (Debian's package); Playwright never downloads one.
Without it the browser tests are skipped, unless REQUIRE_BROWSER=1 (CI), where
a missing browser is a failure rather than a silent skip.
"""

import os
import warnings
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio loop in the test thread; Django would refuse
# ORM calls from the test body (factories, assertions) while that loop exists. Set at
# import: once the session-wide browser is up, the loop stays for the rest of the run.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)."
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(request, browser, live_server):
    """A fresh browser context (no cookies) whose relative URLs go to the live server.

    If the test fails, the page as it was is saved to test-artifacts/<test>/failure.png.
    """
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            folder = ARTIFACTS / request.node.name
            folder.mkdir(parents=True, exist_ok=True)
            try:
                page.screenshot(path=str(folder / "failure.png"), full_page=True)
            except Exception as exc:  # the failure itself matters more than its picture
                warnings.warn(f"No failure screenshot: {exc}", stacklevel=1)
    finally:
        context.close()


@pytest.fixture
def screenshot(request):
    """screenshot(page, "step") saves test-artifacts/<test name>/<nn>-<step>.png."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    taken = []

    def take(page, step: str) -> Path:
        path = folder / f"{len(taken) + 1:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        taken.append(path)
        return path

    take.paths = taken
    return take


# The marketplace's fixtures (a developer, apps made through the services).
from tests.marketplace.conftest import developer, make_app, staff  # noqa: E402, F401
