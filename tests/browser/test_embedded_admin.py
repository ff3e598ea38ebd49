"""The merchant's view: install through OAuth, then shopseg embedded in devstore's Shopify admin.

Proves in a real browser that the frame is allowed (CSP frame-ancestors), App Bridge's session
tokens reach the app, and fetch() calls from the page are authenticated as the shop.
"""
import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import app_frame, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_renders_embedded_and_api_calls_carry_session_tokens(page, embedded_app):
    shop, admin_url = embedded_app
    page.goto(admin_url)
    frame = app_frame(page)
    frame.wait_for_selector(f"main:has-text('{shop}')")
    assert frame.inner_text("h1") == "Segments"
    body = frame.evaluate("fetch('/api/shop').then(r => r.json().then(j => ({status: r.status, body: j})))")
    assert body["status"] == 200 and body["body"]["domain"] == shop
    screenshot(page, "embedded-admin")


def test_app_refuses_to_be_framed_by_another_origin(page, embedded_app, tmp_path):
    """A page on another origin framing the app gets nothing: frame-ancestors names only the admin."""
    shop, admin_url = embedded_app
    page.goto(admin_url)  # the admin page holds a valid, signed app URL with a session token
    app_src = page.get_attribute("#app-iframe", "src")
    evil = tmp_path / "evil.html"
    evil.write_text(f'<iframe id="f" src="{app_src}"></iframe>')
    page.goto(evil.as_uri(), wait_until="load")   # "load" waits for the frame, blocked or not
    assert shop not in framed_documents(page)      # Chromium blocked the frame


def framed_documents(page) -> str:
    """The HTML of every frame below the page, read once none of them is between two documents (a
    blocked frame moves on to Chromium's error page, and reading it mid-way raises)."""
    for _ in range(50):
        try:
            return "".join(frame.content() for frame in page.frames[1:])
        except PlaywrightError:
            page.wait_for_timeout(100)
    raise AssertionError("the framed document never settled")
