"""The account pages in a real browser: log in, create a token, use it, revoke it, log out.

Needs Debian's chromium at /usr/bin/chromium (`apt-get install chromium chromium-driver`);
the test is skipped without it. Playwright's own browser downloads are never used.
Set BROWSER_SCREENSHOTS=<dir> to keep a screenshot of each step.
"""

import os
from pathlib import Path

import pytest
import requests

from tests.conftest import PASSWORD
from tests.portal.helpers import API_PATH

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API runs an event loop on this thread; Django would otherwise
    # refuse the test's own ORM calls as "async unsafe".
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def snapshot(page, name: str) -> None:
    directory = os.environ.get("BROWSER_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)


def api_status(base_url: str, token: str) -> int:
    response = requests.get(
        base_url + API_PATH,
        params={"experiment_id": "0"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return response.status_code


def test_alice_creates_uses_and_revokes_a_token_in_the_browser(
    transactional_db, live_server, alice, default_experiment, browser_page
):
    page = browser_page
    page.goto(live_server.url + "/accounts/login/?next=/accounts/tokens/")
    snapshot(page, "1-login")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/accounts/tokens/")
    assert "alice" in page.locator("header").inner_text()

    page.fill("#token-name", "laptop")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").inner_text().strip()
    snapshot(page, "2-token-created")
    assert token.startswith("mlp_")
    assert page.get_by_role("row").filter(has_text="laptop").filter(has_text="active").count() == 1

    assert api_status(live_server.url, token) == 200

    page.get_by_role("row").filter(has_text="laptop").get_by_role("button", name="Revoke").click()
    page.wait_for_url("**/accounts/tokens/")
    snapshot(page, "3-token-revoked")
    assert "Token “laptop” revoked." in page.locator(".messages").inner_text()
    assert page.locator("#new-token").count() == 0
    assert api_status(live_server.url, token) == 401

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")
    page.goto(live_server.url + "/accounts/tokens/")
    assert "/accounts/login/" in page.url
