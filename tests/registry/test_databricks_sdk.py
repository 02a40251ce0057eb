"""Databricks' workspace-registry approval API, driven by the real databricks-sdk against a
live portal: transition requests (create, approve, reject, delete, list) and comments on
versions, with token and HTTP Basic credentials.

alice owns `churn` (versions 1 and 2) and asks; bob holds APPROVE on it and decides;
charlie is the outsider.
"""

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, NotFound, PermissionDenied, Unauthenticated
from databricks.sdk.service.ml import ActivityAction, ActivityType, CommentActivityAction

from portal import permissions
from registry import selectors, services
from registry.models import ModelVersion, TransitionRequest
from tests.portal.helpers import fresh_password
from tests.registry.conftest import make_version

State = TransitionRequest.State


@pytest.fixture(autouse=True)
def _no_databricks_configuration(monkeypatch, tmp_path):
    """Only what a test passes configures the SDK: no DATABRICKS_* variable, no ~/.databrickscfg."""
    import os

    for name in [n for n in os.environ if n.startswith(("DATABRICKS_", "ARM_", "GOOGLE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))


@pytest.fixture
def churn(portal, alice, bob, model_dir_run):
    model = services.registered_model_create(actor=alice, name="churn")
    for _ in range(2):
        make_version(alice, "churn", model_dir_run)
    permissions.grant_create(actor=alice, root=model, level="APPROVE", user=bob)
    return model


@pytest.fixture
def as_user(portal):
    """as_user(user) -> a WorkspaceClient acting as `user` with their API token;
    as_user(user, password=...) with their username and password (HTTP Basic)."""

    def make(user, *, password: str | None = None) -> WorkspaceClient:
        if password is not None:
            return WorkspaceClient(host=portal.url, username=user.username, password=password, auth_type="basic")
        return WorkspaceClient(host=portal.url, token=portal.token_for(user))

    return make


def stage_of(version: int) -> str:
    return ModelVersion.objects.get(registered_model__name="churn", version=version).current_stage


def request_state(version: int, stage: str) -> str:
    return TransitionRequest.objects.filter(version_number=version, target=stage).latest("id").state


# ---------------------------------------------------------------- the approval flow


@pytest.mark.governed
def test_an_approver_approves_alices_request_and_the_version_moves_to_production(
    as_user, alice, bob, churn, eager_tasks
):
    created = as_user(alice).model_registry.create_transition_request(
        name="churn", version="1", stage="Production", comment="AUC 0.91 on the holdout"
    )

    request = created.request
    assert (request.to_stage, request.user_id, request.comment) == ("Production", "alice", "AUC 0.91 on the holdout")
    assert request.creation_timestamp > 0
    assert request.available_actions == [ActivityAction.CANCEL_TRANSITION_REQUEST]
    assert stage_of(1) == "None"

    approved = as_user(bob).model_registry.approve_transition_request(
        name="churn", version="1", stage="Production", archive_existing_versions=False, comment="Looks good"
    )

    activity = approved.activity
    assert activity.activity_type == ActivityType.APPROVED_REQUEST
    assert (activity.from_stage, activity.to_stage) == ("None", "Production")
    assert (activity.user_id, activity.comment) == ("bob", "Looks good")
    assert activity.id and activity.creation_timestamp >= request.creation_timestamp
    assert "Production" in activity.system_comment
    assert stage_of(1) == "Production"
    assert as_user(alice).model_registry.get_model_version(name="churn", version="1").model_version.current_stage == (
        "Production"
    )


@pytest.mark.governed
def test_approving_with_archive_existing_versions_archives_the_version_in_production(
    as_user, alice, bob, churn, eager_tasks
):
    for version in ("1", "2"):
        as_user(alice).model_registry.create_transition_request(name="churn", version=version, stage="Production")
        as_user(bob).model_registry.approve_transition_request(
            name="churn", version=version, stage="Production", archive_existing_versions=version == "2"
        )

    assert (stage_of(1), stage_of(2)) == ("Archived", "Production")


@pytest.mark.governed
def test_the_requester_may_not_approve_her_own_request(as_user, alice, churn):
    as_user(alice).model_registry.create_transition_request(name="churn", version="1", stage="Production")

    with pytest.raises(PermissionDenied, match="two-person rule"):
        as_user(alice).model_registry.approve_transition_request(
            name="churn", version="1", stage="Production", archive_existing_versions=False
        )
    assert request_state(1, "Production") == State.PENDING


def test_a_user_without_approve_may_not_approve(as_user, alice, charlie, churn):
    as_user(alice).model_registry.create_transition_request(name="churn", version="1", stage="Staging")

    with pytest.raises(PermissionDenied, match="APPROVE"):
        as_user(charlie).model_registry.approve_transition_request(
            name="churn", version="1", stage="Staging", archive_existing_versions=False
        )


def test_a_request_for_an_unprotected_stage_is_approved_too(as_user, alice, bob, churn, eager_tasks):
    as_user(alice).model_registry.create_transition_request(name="churn", version="2", stage="Staging")
    as_user(bob).model_registry.approve_transition_request(
        name="churn", version="2", stage="Staging", archive_existing_versions=False
    )

    assert stage_of(2) == "Staging"


def test_approving_without_an_open_request_is_not_found(as_user, bob, churn):
    with pytest.raises(NotFound, match="No open transition request"):
        as_user(bob).model_registry.approve_transition_request(
            name="churn", version="1", stage="Production", archive_existing_versions=False
        )


@pytest.mark.governed
def test_rejecting_ends_the_request(as_user, alice, bob, churn):
    as_user(alice).model_registry.create_transition_request(name="churn", version="1", stage="Production")

    rejected = as_user(bob).model_registry.reject_transition_request(
        name="churn", version="1", stage="Production", comment="Not on Friday"
    )

    activity = rejected.activity
    assert activity.activity_type == ActivityType.REJECTED_REQUEST
    assert (activity.user_id, activity.comment, activity.to_stage) == ("bob", "Not on Friday", "Production")
    assert request_state(1, "Production") == State.REJECTED
    assert stage_of(1) == "None"
    assert list(as_user(alice).model_registry.list_transition_requests(name="churn", version="1")) == []


def test_the_requester_deletes_her_request(as_user, alice, churn):
    as_user(alice).model_registry.create_transition_request(name="churn", version="1", stage="Staging")

    deleted = as_user(alice).model_registry.delete_transition_request(
        name="churn", version="1", stage="Staging", creator="alice", comment="Wrong version"
    )

    activity = deleted.activity
    assert activity.activity_type == ActivityType.CANCELLED_REQUEST
    assert (activity.user_id, activity.comment, activity.to_stage) == ("alice", "Wrong version", "Staging")
    assert request_state(1, "Staging") == State.CANCELLED


def test_nobody_else_deletes_alices_request(as_user, alice, bob, churn):
    as_user(alice).model_registry.create_transition_request(name="churn", version="1", stage="Staging")

    with pytest.raises(PermissionDenied, match="Only the requester"):
        as_user(bob).model_registry.delete_transition_request(
            name="churn", version="1", stage="Staging", creator="alice"
        )
    with pytest.raises(NotFound):
        as_user(bob).model_registry.delete_transition_request(name="churn", version="1", stage="Staging", creator="bob")
    assert request_state(1, "Staging") == State.PENDING


def test_list_shows_the_versions_open_requests(as_user, alice, bob, churn):
    as_user(alice).model_registry.create_transition_request(name="churn", version="1", stage="Staging", comment="a")
    as_user(alice).model_registry.create_transition_request(name="churn", version="1", stage="Production")
    as_user(alice).model_registry.create_transition_request(name="churn", version="2", stage="Staging")

    found = list(as_user(bob).model_registry.list_transition_requests(name="churn", version="1"))

    assert sorted((a.to_stage, a.user_id, a.activity_type) for a in found) == [
        ("Production", "alice", ActivityType.REQUESTED_TRANSITION),
        ("Staging", "alice", ActivityType.REQUESTED_TRANSITION),
    ]
    assert all(a.from_stage == "None" and a.id for a in found)


def test_asking_again_returns_the_open_request(as_user, alice, churn):
    first = as_user(alice).model_registry.create_transition_request(name="churn", version="1", stage="Staging")
    again = as_user(alice).model_registry.create_transition_request(name="churn", version="1", stage="Staging")

    assert again.request.creation_timestamp == first.request.creation_timestamp
    assert TransitionRequest.objects.count() == 1


def test_an_unknown_stage_is_an_invalid_parameter(as_user, alice, churn):
    with pytest.raises(InvalidParameterValue, match="stage"):
        as_user(alice).model_registry.create_transition_request(name="churn", version="1", stage="Prod")


def test_an_unknown_version_is_not_found(as_user, alice, churn):
    registry = as_user(alice).model_registry
    with pytest.raises(NotFound):
        registry.create_transition_request(name="churn", version="7", stage="Staging")
    with pytest.raises(NotFound):
        list(registry.list_transition_requests(name="churn", version="7"))
    with pytest.raises(NotFound):
        registry.create_comment(name="churn", version="7", comment="hello")


def test_charlie_gets_not_found_on_a_private_model(as_user, alice, charlie, churn):
    services.registered_model_set_private(actor=alice, name="churn", private=True)
    as_user(alice).model_registry.create_transition_request(name="churn", version="1", stage="Staging")

    registry = as_user(charlie).model_registry
    with pytest.raises(NotFound):
        list(registry.list_transition_requests(name="churn", version="1"))
    with pytest.raises(NotFound):
        registry.approve_transition_request(name="churn", version="1", stage="Staging", archive_existing_versions=False)
    with pytest.raises(NotFound):
        registry.create_comment(name="churn", version="1", comment="hello")


# ---------------------------------------------------------------- comments


def test_comments_are_created_updated_and_deleted(as_user, alice, churn):
    registry = as_user(alice).model_registry

    created = registry.create_comment(name="churn", version="1", comment="Validated on Q3 data.").comment
    assert (created.comment, created.user_id) == ("Validated on Q3 data.", "alice")
    assert isinstance(created.id, str) and created.creation_timestamp == created.last_updated_timestamp
    assert created.available_actions == [CommentActivityAction.EDIT_COMMENT, CommentActivityAction.DELETE_COMMENT]

    updated = registry.update_comment(id=created.id, comment="Validated on Q3 and Q4 data.").comment
    assert (updated.id, updated.comment) == (created.id, "Validated on Q3 and Q4 data.")
    assert updated.last_updated_timestamp >= created.last_updated_timestamp
    assert [c.text for c in selectors.comments_for_user(alice, "churn", 1)] == ["Validated on Q3 and Q4 data."]

    registry.delete_comment(id=created.id)
    assert selectors.comments_for_user(alice, "churn", 1) == []


def test_another_user_may_not_edit_or_delete_alices_comment(as_user, alice, bob, churn):
    created = as_user(alice).model_registry.create_comment(name="churn", version="1", comment="mine").comment

    with pytest.raises(PermissionDenied):
        as_user(bob).model_registry.update_comment(id=created.id, comment="theirs")
    with pytest.raises(PermissionDenied):
        as_user(bob).model_registry.delete_comment(id=created.id)
    assert [c.text for c in selectors.comments_for_user(alice, "churn", 1)] == ["mine"]


def test_a_readers_own_comment_offers_edit_and_delete(as_user, alice, bob, churn):
    created = as_user(bob).model_registry.create_comment(name="churn", version="2", comment="bob's").comment

    assert created.user_id == "bob"
    assert created.available_actions == [CommentActivityAction.EDIT_COMMENT, CommentActivityAction.DELETE_COMMENT]


def test_an_unknown_comment_is_not_found(as_user, alice, churn):
    with pytest.raises(NotFound):
        as_user(alice).model_registry.update_comment(id="999999", comment="x")
    with pytest.raises(NotFound):
        as_user(alice).model_registry.delete_comment(id="not-a-number")


# ---------------------------------------------------------------- credentials and discovery


@pytest.mark.governed
def test_http_basic_credentials_work_too(as_user, alice, bob, churn, eager_tasks):
    alices, bobs = fresh_password(alice), fresh_password(bob)

    as_user(alice, password=alices).model_registry.create_transition_request(
        name="churn", version="1", stage="Production"
    )
    as_user(bob, password=bobs).model_registry.approve_transition_request(
        name="churn", version="1", stage="Production", archive_existing_versions=False
    )

    assert stage_of(1) == "Production"


def test_wrong_credentials_are_unauthenticated(portal, churn):
    registry = WorkspaceClient(host=portal.url, token="mlp_not-a-token").model_registry

    with pytest.raises(Unauthenticated):
        list(registry.list_transition_requests(name="churn", version="1"))


def test_the_host_metadata_probe_gets_a_plain_404_so_the_sdk_falls_back(portal, alice, churn):
    # WorkspaceClient first asks for /.well-known/databricks-config; on an error it keeps
    # the host and credentials it was given. The portal has no such page: 404, not a
    # redirect to the login page, with or without credentials.
    url = f"{portal.url}/.well-known/databricks-config"
    for headers in ({}, {"Authorization": f"Bearer {portal.token_for(alice)}"}):
        response = requests.get(url, headers=headers, allow_redirects=False, timeout=30)
        assert response.status_code == 404

    client = WorkspaceClient(host=portal.url, token=portal.token_for(alice))
    assert client.config.host == portal.url and client.config.auth_type == "pat"


def test_the_sdks_deletes_with_query_strings_reach_the_mlflow_door(as_user, alice, churn):
    """databricks-sdk sends DELETE parameters in the query string, the mlflow client in a JSON
    body; the MLflow door reads both."""
    from registry import services
    from registry.models import ModelVersionTag, RegisteredModelTag

    services.registered_model_tag_set(actor=alice, name="churn", key="team", value="growth")
    services.model_version_tag_set(actor=alice, name="churn", version=1, key="validated", value="yes")
    registry = as_user(alice).model_registry
    registry.delete_model_tag("churn", "team")
    registry.delete_model_version_tag("churn", "1", "validated")
    assert not RegisteredModelTag.objects.filter(key="team").exists()
    assert not ModelVersionTag.objects.filter(key="validated").exists()
