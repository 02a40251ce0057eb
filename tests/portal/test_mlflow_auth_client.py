"""MLflow's own auth client (`get_app_client("basic-auth")`) managing users, grants and roles
on a live portal, and the real tracking client feeling the effect on its next request.

The portal default is NONE here, so every access the stories show comes from a grant, a
team grant or a team default.
"""

from types import SimpleNamespace

import pytest
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.server.auth.entities import Role, User

from tests.conftest import PASSWORD


class Acting:
    """A client bound to one user. The mlflow clients read their credentials from the
    environment on every request, so each call first points them at that user."""

    def __init__(self, portal, user, client, basic):
        self._portal, self._user, self._client, self._basic = portal, user, client, basic

    def __getattr__(self, name):
        method = getattr(self._client, name)

        def call(*args, **kwargs):
            self._portal.act_as(self._user, basic=self._basic)
            return method(*args, **kwargs)

        return call


@pytest.fixture
def auth(portal):
    """auth(user) -> MLflow's AuthServiceClient acting as `user` (HTTP Basic, as its docs show)."""

    def make(user, *, basic: bool = True):
        return Acting(portal, user, get_app_client("basic-auth", tracking_uri=portal.url), basic)

    return make


@pytest.fixture
def tracking(portal):
    """tracking(user) -> the real MlflowClient acting as `user` (an API token, or Basic)."""

    def make(user, *, basic: bool = False):
        return Acting(portal, user, portal.client(), basic)

    return make


@pytest.fixture(autouse=True)
def _nothing_by_default(settings):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"


def code(exc_info) -> str:
    return exc_info.value.error_code


def fails(call, *args, **kwargs) -> str:
    with pytest.raises(MlflowException) as exc:
        call(*args, **kwargs)
    return code(exc)


def test_an_admin_manages_users_with_mlflows_client(portal, auth, monkeypatch, root, alice):
    admin = auth(root)
    created = admin.create_user("dave", "dave's long passphrase")
    assert isinstance(created, User) and created.username == "dave" and created.is_admin is False
    assert admin.get_user("dave").id == created.id
    assert fails(admin.create_user, "dave", "another passphrase") == "RESOURCE_ALREADY_EXISTS"
    assert fails(admin.get_user, "nobody") == "RESOURCE_DOES_NOT_EXIST"

    # dave signs in with the password he was given and changes it himself.
    portal.act_as(None)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "dave")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "dave's long passphrase")
    as_dave = get_app_client("basic-auth", tracking_uri=portal.url)
    assert as_dave.get_user("dave").username == "dave"
    assert fails(as_dave.update_user_password, "dave", "a brand new passphrase") == "INVALID_PARAMETER_VALUE"
    as_dave.update_user_password("dave", "a brand new passphrase", current_password="dave's long passphrase")
    assert fails(as_dave.get_user, "dave") == "UNAUTHENTICATED"  # the old password is gone at once
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "a brand new passphrase")
    assert as_dave.get_user("dave").username == "dave"
    assert fails(as_dave.get_user, "alice") == "PERMISSION_DENIED"
    assert fails(as_dave.create_user, "eve", "eve's long passphrase") == "PERMISSION_DENIED"
    assert fails(as_dave.update_user_admin, "dave", True) == "PERMISSION_DENIED"
    assert fails(as_dave.delete_user, "alice") == "PERMISSION_DENIED"

    admin = auth(root)
    admin.update_user_admin("dave", True)
    assert admin.get_user("dave").is_admin is True
    admin.update_user_password("dave", "set by the admin 42")
    admin.delete_user("dave")
    assert fails(admin.get_user, "dave") == "RESOURCE_DOES_NOT_EXIST"
    assert fails(admin.delete_user, "root") == "INVALID_STATE"

    # Non-admins may not create users, with a token as with a password.
    assert fails(auth(alice, basic=False).create_user, "eve", "eve's long passphrase") == "PERMISSION_DENIED"


def test_a_role_gives_its_members_an_experiment_and_every_model(auth, tracking, root, alice, bob):
    admin, as_alice, as_bob = auth(root), tracking(alice), tracking(bob)
    experiment_id = as_alice.create_experiment("churn")
    as_alice.create_registered_model("churn-model")
    assert fails(as_bob.get_experiment, experiment_id) == "RESOURCE_DOES_NOT_EXIST"

    # root creates a user and a role, gives the role the experiment and every model, and
    # assigns bob and the new user to it.
    admin.create_user("erin", PASSWORD)
    as_erin = tracking(SimpleNamespace(username="erin"), basic=True)
    role = admin.create_role("default", "growth", description="The growth team")
    assert isinstance(role, Role) and role.workspace == "default" and role.permissions == []
    on_experiment = admin.add_role_permission(role.id, "experiment", experiment_id, "READ")
    on_models = admin.add_role_permission(role.id, "registered_model", "*", "USE")
    assert (on_experiment.role_id, on_experiment.resource_pattern, on_experiment.permission) == (
        role.id,
        experiment_id,
        "READ",
    )
    assert (on_models.resource_type, on_models.resource_pattern, on_models.permission) == (
        "registered_model",
        "*",
        "USE",
    )
    assert fails(admin.add_role_permission, role.id, "registered_model", "*", "EDIT") == "RESOURCE_ALREADY_EXISTS"
    assert fails(admin.add_role_permission, role.id, "prompt", "*", "READ") == "INVALID_PARAMETER_VALUE"
    assert fails(admin.create_role, "research", "growth") == "RESOURCE_DOES_NOT_EXIST"
    assert fails(auth(alice).create_role, "default", "mine") == "PERMISSION_DENIED"
    assert fails(auth(alice).assign_role, "alice", role.id) == "PERMISSION_DENIED"
    assignment = admin.assign_role("bob", role.id)
    assert (assignment.user_id, assignment.role_id) == (bob.id, role.id)
    admin.assign_role("erin", role.id)

    # The members, with the real tracking client, see what the role gives on their next request.
    for member in (as_bob, as_erin):
        assert member.get_experiment(experiment_id).name == "churn"
        assert [e.experiment_id for e in member.search_experiments() if e.name == "churn"] == [experiment_id]
        assert member.get_registered_model("churn-model").name == "churn-model"
    assert fails(as_bob.set_experiment_tag, experiment_id, "k", "v") == "PERMISSION_DENIED"

    got = admin.get_role(role.id)
    assert got.name == "growth" and got.description == "The growth team"
    assert [p.id for p in got.permissions] == [on_experiment.id, on_models.id]
    assert [r.id for r in admin.list_roles("default")] == [role.id]
    assert [p.id for p in admin.list_role_permissions(role.id)] == [on_experiment.id, on_models.id]
    assert [a.user_id for a in admin.list_role_users(role.id)] == [bob.id, admin.get_user("erin").id]
    assert assignment.id in [a.id for a in admin.list_role_users(role.id)]
    assert [r.id for r in admin.list_user_roles("bob")] == [role.id]
    assert [r.id for r in auth(bob).list_user_roles("bob")] == [role.id]
    through_team = admin.get_user_permission("bob", "experiment", experiment_id)
    assert (through_team.allowed, through_team.permission) == (False, "READ")
    models = admin.get_user_permission("bob", "registered_model", "churn-model")
    assert (models.allowed, models.permission) == (True, "USE")

    updated = admin.update_role_permission(on_experiment.id, "EDIT")
    assert updated.id == on_experiment.id and updated.permission == "EDIT"
    as_bob.set_experiment_tag(experiment_id, "k", "v")
    assert admin.update_role(role.id, name="growth-team").name == "growth-team"

    admin.remove_role_permission(on_models.id)
    assert fails(as_bob.get_registered_model, "churn-model") == "RESOURCE_DOES_NOT_EXIST"
    admin.unassign_role("bob", role.id)
    assert fails(as_bob.get_experiment, experiment_id) == "RESOURCE_DOES_NOT_EXIST"
    assert as_erin.get_experiment(experiment_id).name == "churn"
    admin.delete_role(role.id)
    assert fails(admin.get_role, role.id) == "RESOURCE_DOES_NOT_EXIST"
    assert fails(as_erin.get_experiment, experiment_id) == "RESOURCE_DOES_NOT_EXIST"


def test_grants_take_effect_on_the_next_request_and_deny_beats_a_team(auth, tracking, root, alice, bob, charlie):
    admin, as_alice, as_charlie = auth(root), auth(alice), tracking(charlie)
    experiment_id = tracking(alice).create_experiment("churn")

    # alice manages her experiment, so she grants it with MLflow's client.
    as_alice.grant_user_permission("charlie", "experiment", experiment_id, "READ")
    assert as_charlie.get_experiment(experiment_id).name == "churn"
    assert fails(as_alice.grant_user_permission, "charlie", "experiment", experiment_id, "EDIT") == (
        "RESOURCE_ALREADY_EXISTS"
    )
    as_alice.revoke_user_permission("charlie", "experiment", experiment_id)
    assert fails(as_charlie.get_experiment, experiment_id) == "RESOURCE_DOES_NOT_EXIST"

    # Those who may not manage it: PERMISSION_DENIED if they see it, else it does not exist.
    as_alice.grant_user_permission("bob", "experiment", experiment_id, "EDIT")
    grant = ("charlie", "experiment", experiment_id, "READ")
    assert fails(auth(bob).grant_user_permission, *grant) == "PERMISSION_DENIED"
    assert fails(auth(charlie).grant_user_permission, *grant) == "RESOURCE_DOES_NOT_EXIST"
    for resource_type in ("prompt", "scorer", "gateway_endpoint", "mcp_server", "workspace"):
        assert fails(as_alice.grant_user_permission, "bob", resource_type, "1", "READ") == "INVALID_PARAMETER_VALUE"

    # A team's READ, then a DENY for charlie himself: the DENY wins.
    role = admin.create_role("default", "readers")
    admin.add_role_permission(role.id, "experiment", experiment_id, "READ")
    admin.assign_role("charlie", role.id)
    assert as_charlie.get_experiment(experiment_id).name == "churn"
    through_team = auth(charlie).get_user_permission("charlie", "experiment", experiment_id)
    assert (through_team.allowed, through_team.permission) == (False, "READ")

    as_alice.grant_user_permission("charlie", "experiment", experiment_id, "DENY")
    assert fails(as_charlie.get_experiment, experiment_id) == "RESOURCE_DOES_NOT_EXIST"
    assert experiment_id not in [e.experiment_id for e in as_charlie.search_experiments()]
    denied = admin.get_user_permission("charlie", "experiment", experiment_id)
    assert (denied.allowed, denied.permission) == (False, "DENY")
    managed = as_alice.get_user_permission("alice", "experiment", experiment_id)
    assert (managed.allowed, managed.permission) == (True, "MANAGE")
    assert fails(auth(bob).get_user_permission, "charlie", "experiment", experiment_id) == "PERMISSION_DENIED"

    as_alice.revoke_user_permission("charlie", "experiment", experiment_id)
    assert as_charlie.get_experiment(experiment_id).name == "churn"
    # The last MANAGE grant stays, even for its holder.
    assert fails(as_alice.revoke_user_permission, "alice", "experiment", experiment_id) == "INVALID_STATE"
