"""Headless Chromium (Debian's `chromium`) driven by Playwright for Python, against the real pages
served by live_server and framed by devstore's Shopify admin.

Fixtures: `chromium` (one browser per session), `page` (a fresh 1280x900 context per test, clipboard
allowed), `embedded_app` ((shop domain, admin URL) after a real OAuth install). Helpers: `app_frame`
(the app's iframe inside devstore's admin) and `screenshot` (a PNG per page, written to
SHOPSEG_SCREENSHOTS, default tests/browser/screenshots/, which git ignores).
"""
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Frame, Page, sync_playwright

from tests.conftest import install_live

# Playwright's sync API runs an event loop in this thread; the ORM calls that live_server and the
# fixtures make from it are still synchronous, so Django's async-safety check does not apply.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("SHOPSEG_SCREENSHOTS", Path(__file__).parent / "screenshots"))
TIMEOUT_MS = 20_000


@pytest.fixture(scope="session")
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server) -> Page:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def embedded_app(devstore, live_server, settings):
    return install_live(devstore, live_server, settings)


def app_frame(page: Page) -> Frame:
    """The app's document inside devstore's admin (waits for the frame to have loaded the app)."""
    frame = page.wait_for_selector("#app-iframe").content_frame()
    frame.wait_for_selector("main")
    return frame


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
