"""Databricks' approval API on the MLflow door (registry/databricks_api.py): the wiring and
the exact JSON, through Django's test client; and the service rule it added
(archive_existing_versions given at approval). The real SDK is in test_databricks_sdk.py.

Requests are decided in a test transaction here, so the apply task (enqueued on commit)
does not run: an approval that meets the policy leaves the request approved.
"""

import json
from urllib.parse import urlencode

import pytest

from portal import permissions
from portal.errors import InvalidParameter
from portal.models import AuditEvent
from portal.services import api_token_create
from registry import services
from registry.models import Comment, TransitionRequest
from registry.services import policies
from tests.portal.helpers import bearer

API = "/api/2.0/mlflow/"
State = TransitionRequest.State


@pytest.fixture
def call(client):
    tokens = {}

    def send(user, method, path, data=None, *, query=None, prefix=API):
        headers = {}
        if user is not None:
            if user.pk not in tokens:
                tokens[user.pk] = api_token_create(user=user, name="tests").raw
            headers = bearer(tokens[user.pk])
        url = prefix + path
        if method == "GET":
            return client.get(url, data or {}, **headers)
        if query:
            url += "?" + urlencode(query)
        if data is None:
            return client.generic(method, url, **headers)
        return client.generic(method, url, json.dumps(data), content_type="application/json", **headers)

    return send


@pytest.fixture
def approver(alice, bob, churn):
    permissions.grant_create(actor=alice, root=churn, level="APPROVE", user=bob)
    return bob


def ask(call, user, version=1, stage="Production", comment="please"):
    return call(user, "POST", "transition-requests/create",
                {"name": "churn", "version": str(version), "stage": stage, "comment": comment})


def open_request() -> TransitionRequest:
    return TransitionRequest.objects.get(state=State.PENDING)


# ---------------------------------------------------------------- transition requests


def test_create_answers_a_transition_request(call, alice, versions):
    response = ask(call, alice)

    assert response.status_code == 200, response.content
    request = open_request()
    assert response.json() == {
        "request": {
            "available_actions": ["CANCEL_TRANSITION_REQUEST"],
            "comment": "please",
            "creation_timestamp": request.creation_timestamp,
            "to_stage": "Production",
            "user_id": "alice",
        }
    }


def test_list_answers_activities_with_the_callers_actions(call, alice, approver, versions):
    ask(call, alice)
    request = open_request()

    as_alice = call(alice, "GET", "transition-requests/list", {"name": "churn", "version": "1"}).json()
    as_bob = call(approver, "GET", "transition-requests/list", {"name": "churn", "version": "1"}).json()

    assert as_bob == {
        "requests": [
            {
                "activity_type": "REQUESTED_TRANSITION",
                "available_actions": ["APPROVE_TRANSITION_REQUEST", "REJECT_TRANSITION_REQUEST"],
                "comment": "please",
                "creation_timestamp": request.creation_timestamp,
                "from_stage": "None",
                "id": f"request-{request.pk}",
                "last_updated_timestamp": request.last_updated_timestamp,
                "to_stage": "Production",
                "user_id": "alice",
            }
        ]
    }
    assert as_alice["requests"][0]["available_actions"] == ["CANCEL_TRANSITION_REQUEST"]


def test_list_leaves_out_alias_requests_and_other_versions(call, alice, versions):
    services.transition_request_create(actor=alice, name="churn", version=1, alias="champion")
    ask(call, alice, version=2)

    response = call(alice, "GET", "transition-requests/list", {"name": "churn", "version": "1"})

    assert response.json() == {"requests": []}


def test_approve_answers_an_activity_and_leaves_the_apply_to_the_task(call, alice, approver, versions):
    ask(call, alice)

    response = call(approver, "POST", "transition-requests/approve",
                    {"name": "churn", "version": "1", "stage": "Production", "archive_existing_versions": False,
                     "comment": "ok"})

    assert response.status_code == 200, response.content
    request = TransitionRequest.objects.get()
    decision = request.decisions.get()
    assert request.state == State.APPROVED
    assert response.json() == {
        "activity": {
            "activity_type": "APPROVED_REQUEST",
            "comment": "ok",
            "creation_timestamp": decision.timestamp,
            "from_stage": "None",
            "id": f"decision-{decision.pk}",
            "last_updated_timestamp": decision.timestamp,
            "system_comment": "Approved: the portal's worker applies the transition shortly.",
            "to_stage": "Production",
            "user_id": "bob",
        }
    }


def test_an_approval_short_of_the_policy_says_how_many_are_needed(call, alice, approver, charlie, churn, versions):
    policies.policy_update(actor=alice, name="churn", protected_stages=["Production"], protected_aliases=[],
                           approvals_required=2)
    permissions.grant_create(actor=alice, root=churn, level="APPROVE", user=charlie)
    ask(call, alice)
    body = {"name": "churn", "version": "1", "stage": "Production", "archive_existing_versions": False}

    first = call(approver, "POST", "transition-requests/approve", body)
    again = call(approver, "POST", "transition-requests/approve", body)
    second = call(charlie, "POST", "transition-requests/approve", body)

    assert first.json()["activity"]["system_comment"] == "1 of 2 required approvals; the request stays open."
    assert (again.status_code, again.json()["error_code"]) == (400, "INVALID_STATE")
    assert second.status_code == 200
    assert TransitionRequest.objects.get().state == State.APPROVED


def test_reject_answers_a_rejected_request_activity(call, alice, approver, versions):
    ask(call, alice, stage="Staging")

    response = call(approver, "POST", "transition-requests/reject",
                    {"name": "churn", "version": "1", "stage": "staging", "comment": "no"})

    activity = response.json()["activity"]
    assert (activity["activity_type"], activity["to_stage"], activity["user_id"]) == (
        "REJECTED_REQUEST", "Staging", "bob"
    )
    assert TransitionRequest.objects.get().state == State.REJECTED


def test_delete_reads_the_query_string(call, alice, versions):
    ask(call, alice, stage="Staging")
    request = open_request()

    response = call(alice, "DELETE", "transition-requests/delete",
                    query={"name": "churn", "version": "1", "stage": "Staging", "creator": "alice", "comment": "oops"})

    assert response.status_code == 200, response.content
    request.refresh_from_db()
    assert request.state == State.CANCELLED
    assert response.json() == {
        "activity": {
            "activity_type": "CANCELLED_REQUEST",
            "comment": "oops",
            "creation_timestamp": request.last_updated_timestamp,
            "from_stage": "None",
            "id": f"request-{request.pk}-cancelled",
            "last_updated_timestamp": request.last_updated_timestamp,
            "to_stage": "Staging",
            "user_id": "alice",
        }
    }


def test_delete_reads_a_json_body_too(call, alice, versions):
    ask(call, alice, stage="Staging")

    response = call(alice, "DELETE", "transition-requests/delete",
                    {"name": "churn", "version": "1", "stage": "Staging", "creator": "alice"})

    assert response.status_code == 200, response.content
    assert TransitionRequest.objects.get().state == State.CANCELLED


def test_delete_withdraws_an_approved_request_not_yet_applied(call, alice, approver, versions):
    ask(call, alice)
    services.transition_request_approve(actor=approver, request_id=open_request().pk)

    response = call(alice, "DELETE", "transition-requests/delete",
                    query={"name": "churn", "version": "1", "stage": "Production", "creator": "alice"})

    assert response.status_code == 200, response.content
    assert TransitionRequest.objects.get().state == State.CANCELLED


def test_delete_needs_the_creator(call, alice, versions):
    ask(call, alice, stage="Staging")

    response = call(alice, "DELETE", "transition-requests/delete",
                    query={"name": "churn", "version": "1", "stage": "Staging"})

    assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    "body",
    [
        {"version": "1", "stage": "Production"},
        {"name": "churn", "stage": "Production"},
        {"name": "churn", "version": "1"},
        {"name": "churn", "version": "1", "stage": "Live"},
        {"name": "churn", "version": "one", "stage": "Production"},
    ],
)
def test_bad_parameters_are_invalid_parameter_values(call, alice, versions, body):
    response = call(alice, "POST", "transition-requests/create", body)

    assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


def test_approving_nothing_open_is_resource_does_not_exist(call, approver, versions):
    response = call(approver, "POST", "transition-requests/approve",
                    {"name": "churn", "version": "2", "stage": "Production", "archive_existing_versions": False})

    assert (response.status_code, response.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_the_requesters_own_approval_is_permission_denied(call, alice, versions):
    ask(call, alice)

    response = call(alice, "POST", "transition-requests/approve",
                    {"name": "churn", "version": "1", "stage": "Production", "archive_existing_versions": False})

    assert (response.status_code, response.json()["error_code"]) == (403, "PERMISSION_DENIED")


def test_charlie_gets_404_on_a_private_model(call, alice, charlie, versions):
    services.registered_model_set_private(actor=alice, name="churn", private=True)
    ask(call, alice)

    response = call(charlie, "GET", "transition-requests/list", {"name": "churn", "version": "1"})

    assert (response.status_code, response.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_anonymous_is_unauthenticated(call, versions):
    response = call(None, "GET", "transition-requests/list", {"name": "churn", "version": "1"})

    assert (response.status_code, response.json()["error_code"]) == (401, "UNAUTHENTICATED")


def test_the_ajax_api_mount_serves_it_too(call, alice, versions):
    response = call(alice, "GET", "transition-requests/list", {"name": "churn", "version": "1"},
                    prefix="/ajax-api/2.0/mlflow/")

    assert response.json() == {"requests": []}


def test_a_wrong_method_is_405(call, alice, versions):
    response = call(alice, "GET", "transition-requests/approve")

    assert (response.status_code, response["Allow"]) == (405, "POST")


# ---------------------------------------------------------------- comments


def test_comments_answer_comment_objects_with_string_ids(call, alice, versions):
    created = call(alice, "POST", "comments/create", {"name": "churn", "version": "2", "comment": "hi"})

    comment = Comment.objects.get()
    assert comment.model_version.version == 2
    stamp = int(comment.created_at.timestamp() * 1000)
    assert created.json() == {
        "comment": {
            "available_actions": ["EDIT_COMMENT", "DELETE_COMMENT"],
            "comment": "hi",
            "creation_timestamp": stamp,
            "id": str(comment.pk),
            "last_updated_timestamp": stamp,
            "user_id": "alice",
        }
    }

    updated = call(alice, "PATCH", "comments/update", {"id": str(comment.pk), "comment": "hello"})
    assert updated.json()["comment"]["comment"] == "hello"

    deleted = call(alice, "DELETE", "comments/delete", query={"id": str(comment.pk)})
    assert (deleted.status_code, deleted.json()) == (200, {})
    assert not Comment.objects.exists()


def test_a_manager_may_delete_a_readers_comment_but_not_edit_it(call, alice, bob, versions):
    created = call(bob, "POST", "comments/create", {"name": "churn", "version": "1", "comment": "bob's"}).json()
    comment_id = created["comment"]["id"]

    edited = call(alice, "PATCH", "comments/update", {"id": comment_id, "comment": "alice's"})
    deleted = call(alice, "DELETE", "comments/delete", query={"id": comment_id})

    assert (edited.status_code, edited.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert deleted.status_code == 200


@pytest.mark.parametrize("comment_id", ["abc", "0", "-3", "99999", "1" * 30])
def test_an_unknown_comment_id_is_resource_does_not_exist(call, alice, versions, comment_id):
    response = call(alice, "PATCH", "comments/update", {"id": comment_id, "comment": "x"})

    assert (response.status_code, response.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_an_empty_comment_is_invalid(call, alice, versions):
    response = call(alice, "POST", "comments/create", {"name": "churn", "version": "1", "comment": "  "})

    assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


# ---------------------------------------------------------------- archive_existing_versions at approval


def test_an_approval_may_turn_on_archive_existing_versions(alice, approver, versions):
    request, _ = services.transition_request_create(actor=alice, name="churn", version=1, stage="Production")

    services.transition_request_approve(actor=approver, request_id=request.pk, archive_existing_versions=True)

    request.refresh_from_db()
    assert request.archive_existing_versions is True
    added = AuditEvent.objects.filter(action="transition_request.approval_added").get()
    assert added.after["archive_existing_versions"] is True


def test_an_approval_without_it_keeps_what_the_requester_asked(alice, approver, versions):
    request, _ = services.transition_request_create(
        actor=alice, name="churn", version=1, stage="Production", archive_existing_versions=True
    )

    services.transition_request_approve(actor=approver, request_id=request.pk, archive_existing_versions=False)

    request.refresh_from_db()
    assert request.archive_existing_versions is True


def test_archive_existing_versions_is_only_for_active_stages(alice, approver, versions):
    request, _ = services.transition_request_create(actor=alice, name="churn", version=1, stage="Archived")

    with pytest.raises(InvalidParameter):
        services.transition_request_approve(actor=approver, request_id=request.pk, archive_existing_versions=True)
    request.refresh_from_db()
    assert (request.state, request.archive_existing_versions) == (State.PENDING, False)
    assert not request.decisions.exists()


def test_archive_existing_versions_is_not_for_alias_requests(alice, approver, versions):
    request, _ = services.transition_request_create(actor=alice, name="churn", version=1, alias="champion")

    with pytest.raises(InvalidParameter):
        services.transition_request_approve(actor=approver, request_id=request.pk, archive_existing_versions=True)
