"""The approval workflow's native API: /api/v1/transition-requests/, a model's policy and watching."""

import pytest
from django.test import Client

from portal import permissions
from registry import selectors, services
from registry.models import Stage, TransitionRequest
from tests.conftest import make_user
from tests.native_api import V1, all_pages, post, put, signed_in
from tests.registry.conftest import make_version

pytestmark = [pytest.mark.django_db, pytest.mark.governed]

REQUESTS = f"{V1}transition-requests/"


@pytest.fixture
def setup(alice, bob, churn, model_dir_run):
    for _ in range(3):
        make_version(alice, "churn", model_dir_run)
    permissions.grant_create(actor=alice, root=churn, level="APPROVE", user=bob)
    return churn


def as_user(user):
    return signed_in(Client(), user)


def ask(user, **data):
    return post(as_user(user), REQUESTS, {"model": "churn", "version": 2, "stage": "Production", **data})


def test_create_returns_201_then_the_open_request_with_200(alice, setup):
    first = ask(alice, comment="ready")
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["model"] == "churn" and body["version"] == 2 and body["stage"] == "Production"
    assert body["alias"] is None and body["state"] == "pending" and body["requester"] == "alice"
    assert body["available_actions"] == ["cancel"] and body["approvals_required"] == 1
    assert body["url"].endswith(f"/requests/{body['id']}/")
    again = ask(alice)
    assert again.status_code == 200 and again.json()["id"] == body["id"]


def test_create_validates_its_input(alice, charlie, setup):
    client = as_user(alice)
    assert post(client, REQUESTS, {"model": "churn", "version": 2}).status_code == 400
    assert post(client, REQUESTS, {"model": "churn", "version": 2, "stage": "Production", "alias": "x"}).status_code == 400
    assert post(client, REQUESTS, {"model": "churn", "version": 2, "stage": "Prod"}).status_code == 400
    assert post(client, REQUESTS, {"model": "churn", "version": "two", "stage": "Production"}).status_code == 400
    assert post(client, REQUESTS, {"model": "churn", "version": 2, "stage": "None",
                                   "archive_existing_versions": True}).status_code == 400
    assert post(client, REQUESTS, {"model": "churn", "version": 99, "stage": "Production"}).status_code == 404
    assert post(client, REQUESTS, {"model": "nope", "version": 1, "stage": "Production"}).status_code == 404
    assert ask(charlie).status_code == 403  # a reader may not ask
    assert not TransitionRequest.objects.exists()


def test_an_unprotected_target_may_be_requested_too(alice, bob, setup):
    response = ask(alice, stage="Staging")
    assert response.status_code == 201
    decided = post(as_user(bob), f"{REQUESTS}{response.json()['id']}/approve/", {"comment": "ok"})
    assert decided.status_code == 200
    assert decided.json()["decisions"][0] == {
        "reviewer": "bob", "decision": "approve", "comment": "ok", "timestamp": decided.json()["decisions"][0]["timestamp"]
    }


def test_decisions_and_their_errors(alice, bob, charlie, setup, django_capture_on_commit_callbacks, eager_tasks):
    request_id = ask(alice).json()["id"]
    assert post(as_user(alice), f"{REQUESTS}{request_id}/approve/").status_code == 403
    assert post(as_user(charlie), f"{REQUESTS}{request_id}/approve/").status_code == 403
    assert post(as_user(bob), f"{REQUESTS}{request_id}/retry/").status_code == 409
    assert post(as_user(bob), f"{REQUESTS}{request_id}/frobnicate/").status_code == 404
    assert post(as_user(bob), f"{REQUESTS}999999/approve/").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        approved = post(as_user(bob), f"{REQUESTS}{request_id}/approve/", {"comment": "fine"})
    assert approved.status_code == 200 and approved.json()["state"] == "approved"  # applied once committed
    assert as_user(bob).get(f"{REQUESTS}{request_id}/").json()["state"] == "applied"
    assert post(as_user(bob), f"{REQUESTS}{request_id}/approve/").status_code == 409
    assert post(as_user(alice), f"{REQUESTS}{request_id}/cancel/").status_code == 409
    assert selectors.model_version_get_for_user(alice, "churn", 2).current_stage == Stage.PRODUCTION


def test_reject_and_cancel(alice, bob, setup):
    rejected = ask(alice).json()["id"]
    response = post(as_user(bob), f"{REQUESTS}{rejected}/reject/", {"comment": "no"})
    assert response.status_code == 200 and response.json()["state"] == "rejected"
    cancelled = ask(alice).json()["id"]
    assert post(as_user(bob), f"{REQUESTS}{cancelled}/cancel/").status_code == 403
    response = post(as_user(alice), f"{REQUESTS}{cancelled}/cancel/", {"comment": "oops"})
    assert response.status_code == 200 and response.json()["state"] == "cancelled"


def test_lists_filter_by_state_model_mine_and_to_decide(alice, bob, charlie, root, setup, model_dir_run):
    services.registered_model_create(actor=charlie, name="secret")
    make_version(charlie, "secret", model_dir_run)
    services.registered_model_set_private(actor=charlie, name="secret", private=True)
    hidden = services.transition_request_create(actor=charlie, name="secret", version=1, stage="Production")[0]
    mine = ask(alice).json()["id"]
    other = ask(alice, version=3).json()["id"]
    post(as_user(alice), f"{REQUESTS}{other}/cancel/")

    ids = lambda user, query="": [r["id"] for r in all_pages(as_user(user), f"{REQUESTS}{query}")]  # noqa: E731
    assert ids(alice) == [other, mine]  # newest first; charlie's private model is hidden
    assert ids(root) == [other, mine, hidden.pk]
    assert ids(alice, "?state=pending") == [mine]
    assert ids(alice, "?model=churn&version=3") == [other]
    assert ids(bob, "?mine=1") == []
    assert ids(bob, "?to_decide=1") == [mine]
    assert ids(alice, "?to_decide=1") == []
    assert as_user(alice).get(f"{REQUESTS}?state=bogus").status_code == 400
    assert as_user(alice).get(f"{REQUESTS}?model=secret").status_code == 404
    assert as_user(alice).get(f"{REQUESTS}{hidden.pk}/").status_code == 404
    assert as_user(alice).get(f"{REQUESTS}{mine}/").json()["id"] == mine
    assert Client().get(REQUESTS).status_code == 401


def test_policy_read_by_readers_and_replaced_by_managers(alice, bob, setup):
    url = f"{V1}registered-models/churn/policy/"
    assert as_user(bob).get(url).json()["protected_stages"] == ["Production"]
    new = {"protected_stages": ["Production"], "protected_aliases": ["champion"], "approvals_required": 2,
           "approvers": {"alias:champion": {"users": ["bob"]}}}
    assert put(as_user(bob), url, new).status_code == 403
    response = put(as_user(alice), url, new)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "registered_model": "churn", "protected_stages": ["Production"], "protected_aliases": ["champion"],
        "approvals_required": 2, "requester_may_approve": False,
        "approvers": {"alias:champion": {"users": ["bob"], "teams": []}},
    }
    assert put(as_user(alice), url, {**new, "protected_stages": ["Nope"]}).status_code == 400
    assert put(as_user(alice), url, {**new, "approvals_required": 50}).status_code == 400
    assert put(as_user(alice), url, {"protected_aliases": []}).status_code == 400
    assert as_user(alice).get(f"{V1}registered-models/nope/policy/").status_code == 404


def test_watch_and_unwatch(alice, bob, setup):
    url = f"{V1}registered-models/churn/watch/"
    client = as_user(bob)
    assert client.get(url).json() == {"registered_model": "churn", "watching": False}
    assert post(client, url).json()["watching"] is True
    assert post(client, url).json()["watching"] is True
    assert client.delete(url).json()["watching"] is False
    assert as_user(alice).get(f"{V1}registered-models/nope/watch/").status_code == 404


def test_watchers_are_emailed_when_a_change_is_applied(alice, bob, charlie, setup, mailoutbox,
                                                       django_capture_on_commit_callbacks, eager_tasks):
    post(as_user(charlie), f"{V1}registered-models/churn/watch/")
    request_id = ask(alice).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        post(as_user(bob), f"{REQUESTS}{request_id}/approve/")
    applied = [m for m in mailoutbox if m.subject.startswith("[mlportal] Applied")]
    assert len(applied) == 1 and sorted(applied[0].to) == ["alice@example.com", "charlie@example.com"]


def test_mail_goes_only_to_people_who_may_still_read_the_model(alice, bob, charlie, setup, mailoutbox, settings,
                                                             django_capture_on_commit_callbacks, eager_tasks):
    """An APPROVE grant without READ decides nothing and hears nothing; a watcher who lost
    READ is not told about changes any more."""
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"
    permissions.grant_create(actor=alice, root=setup, level="READ", user=charlie)
    post(as_user(charlie), f"{V1}registered-models/churn/watch/")
    permissions.grant_revoke(actor=alice, root=setup, user=charlie)
    dave = make_user("dave")
    permissions.grant_create(actor=alice, root=setup, level="APPROVE", user=dave)  # no READ
    permissions.grant_create(actor=alice, root=setup, level="READ", user=bob)
    with django_capture_on_commit_callbacks(execute=True):
        request_id = ask(alice).json()["id"]
    assert [m.to for m in mailoutbox] == [["bob@example.com"]]
    assert post(as_user(dave), f"{REQUESTS}{request_id}/approve/").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        post(as_user(bob), f"{REQUESTS}{request_id}/approve/")
    applied = [m for m in mailoutbox if m.subject.startswith("[mlportal] Applied")]
    assert [m.to for m in applied] == [["alice@example.com"]]


def test_a_version_filter_needs_a_model(alice, setup):
    assert as_user(alice).get(f"{REQUESTS}?version=1").status_code == 400


def test_a_page_of_requests_costs_the_same_queries_however_many_it_holds(alice, bob, setup, model_dir_run):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for_list() -> int:
        client = as_user(bob)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"{REQUESTS}?to_decide=1")
        assert response.status_code == 200
        return len(captured)

    ask(alice, version=1)
    few = queries_for_list()
    for number in range(4, 10):
        make_version(alice, "churn", model_dir_run)
        services.transition_request_create(actor=alice, name="churn", version=number, stage="Production")
    post(as_user(bob), f"{REQUESTS}{ask(alice, version=2).json()['id']}/approve/")  # one with a decision
    assert len(as_user(bob).get(f"{REQUESTS}").json()["results"]) == 8
    assert queries_for_list() == few
