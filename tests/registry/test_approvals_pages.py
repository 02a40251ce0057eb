"""The approval pages in a real browser: a reviewer finds the request waiting for them,
approves it with a comment, and sees it applied; the requester sees no Approve button on
their own request. Skipped without /usr/bin/chromium, like the other browser tests."""

import os

import pytest

from portal import permissions
from registry import selectors, services
from registry.models import Stage
from tests.conftest import PASSWORD
from tests.portal.test_pages_browser import CHROMIUM, snapshot
from tests.registry.conftest import make_version

pytestmark = [pytest.mark.governed, pytest.mark.usefixtures("eager_tasks")]
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")


def log_in(page, base_url: str, username: str, next_path: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_path}")


@needs_chromium
def test_a_reviewer_approves_a_request_in_the_browser(
    transactional_db, live_server, alice, bob, default_experiment, model_dir_run, browser_page
):
    model = services.registered_model_create(actor=alice, name="churn")
    make_version(alice, "churn", model_dir_run)
    permissions.grant_create(actor=alice, root=model, level="APPROVE", user=bob)
    request = services.model_version_transition_stage(
        actor=alice, name="churn", version=1, stage="Production", comment="AUC 0.91 on the holdout"
    ).request
    page = browser_page

    log_in(page, live_server.url, "alice", f"/requests/{request.pk}/")
    assert "pending" in page.locator("#state").inner_text()
    assert page.get_by_role("button", name="Approve").count() == 0  # not on one's own request
    assert page.get_by_role("button", name="Cancel").count() == 1
    page.context.clear_cookies()

    log_in(page, live_server.url, "bob", "/requests/")
    snapshot(page, "approvals-1-waiting")
    page.get_by_role("link", name=f"transition request {request.pk}").click()
    page.wait_for_url(f"**/requests/{request.pk}/")
    assert "AUC 0.91 on the holdout" in page.locator("main").inner_text()
    page.get_by_label("Comment for approve").fill("checked the holdout")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"**/requests/{request.pk}/")
    snapshot(page, "approvals-2-applied")
    assert "approve done" in page.locator(".messages").inner_text()
    assert "applied" in page.locator("#state").inner_text()
    assert "checked the holdout" in page.locator("main").inner_text()
    assert selectors.model_version_get_for_user(alice, "churn", 1).current_stage == Stage.PRODUCTION


def test_a_decision_form_without_csrf_is_refused(transactional_db, live_server, alice, bob, model_dir_run):
    import requests

    model = services.registered_model_create(actor=alice, name="churn")
    make_version(alice, "churn", model_dir_run)
    permissions.grant_create(actor=alice, root=model, level="APPROVE", user=bob)
    request = services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Production").request
    session = requests.Session()
    login = session.get(f"{live_server.url}/accounts/login/")
    token = session.cookies["csrftoken"]
    session.post(f"{live_server.url}/accounts/login/", data={"username": "bob", "password": PASSWORD,
                                                             "csrfmiddlewaretoken": token},
                 headers={"Referer": login.url})
    forged = session.post(f"{live_server.url}/requests/{request.pk}/approve", data={"comment": "x"},
                          allow_redirects=False)
    assert forged.status_code == 403
    request.refresh_from_db()
    assert request.state == "pending"
