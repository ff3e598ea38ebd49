"""The merchant's view: install through OAuth, then shopseg embedded in devstore's Shopify admin.

Proves in a real browser that the frame is allowed (CSP frame-ancestors), App Bridge's session
tokens reach the app, and fetch() calls from the page are authenticated as the shop.
"""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import install_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def embedded_app(devstore, live_server, settings):
    return install_live(devstore, live_server, settings)


def test_admin_renders_embedded_and_api_calls_carry_session_tokens(browser, embedded_app, tmp_path):
    shop, admin_url = embedded_app
    browser.get(admin_url)
    frame = browser.find_element(By.ID, "app-iframe")
    browser.switch_to.frame(frame)
    WebDriverWait(browser, 20).until(ec.text_to_be_present_in_element((By.TAG_NAME, "main"), shop))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Segments"
    body = browser.execute_async_script(
        "const done = arguments[0];"
        "fetch('/api/shop').then(r => r.json().then(j => done({status: r.status, body: j})))"
        ".catch(e => done({error: String(e)}));")
    assert body["status"] == 200 and body["body"]["domain"] == shop
    browser.switch_to.default_content()
    browser.save_screenshot(str(tmp_path / "embedded-admin.png"))


def test_app_refuses_to_be_framed_by_another_origin(browser, embedded_app, live_server, tmp_path):
    """A page on another origin framing the app gets nothing: frame-ancestors names only the admin."""
    shop, admin_url = embedded_app
    browser.get(admin_url)  # the admin page holds a valid, signed app URL with a session token
    app_src = browser.find_element(By.ID, "app-iframe").get_attribute("src")
    evil = tmp_path / "evil.html"
    evil.write_text(f'<iframe id="f" src="{app_src}"></iframe>')
    browser.get(evil.as_uri())
    browser.switch_to.frame(browser.find_element(By.ID, "f"))
    assert shop not in browser.page_source   # Chromium blocked the frame
    browser.switch_to.default_content()
