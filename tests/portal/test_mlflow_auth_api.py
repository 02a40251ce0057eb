"""MLflow's basic-auth API on the portal, over HTTP: status codes, error codes and JSON shapes.

Users, per-user grants and roles (teams) as MLflow's AuthServiceClient calls them; the
end-to-end stories with the real client are in test_mlflow_auth_client.py.
"""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from portal import permissions, services
from portal.models import TeamDefaultGrant
from portal.services import api_token_create
from registry.services import registered_model_create
from tests.conftest import PASSWORD
from tests.factories import make_experiment
from tests.portal.helpers import basic, bearer

pytestmark = pytest.mark.django_db

V2 = "/api/2.0/mlflow"
V3 = "/api/3.0/mlflow"


class Api:
    """Calls the MLflow door as one user, the way the mlflow client does (JSON bodies)."""

    def __init__(self, client, user):
        self.client = client
        self.headers = bearer(api_token_create(user=user, name="tests").raw)

    def get(self, path, **query):
        return self.client.get(path, query, **self.headers)

    def send(self, method, path, body=None):
        call = getattr(self.client, method.lower())
        return call(path, json.dumps(body or {}), content_type="application/json", **self.headers)

    def post(self, path, body=None):
        return self.send("POST", path, body)

    def patch(self, path, body=None):
        return self.send("PATCH", path, body)

    def delete(self, path, body=None):
        return self.send("DELETE", path, body)


@pytest.fixture
def api(client):
    return lambda user: Api(client, user)


def error(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["error_code"] == code, response.content
    return response.json()["message"]


@pytest.fixture
def experiment(alice):
    return make_experiment(owner=alice, name="churn")


@pytest.fixture
def team(root):
    return services.team_create(actor=root, name="growth", description="The growth team")


# ---------------------------------------------------------------- users


def test_an_admin_creates_a_user_in_mlflows_shape(api, root):
    response = api(root).post(f"{V2}/users/create", {"username": "dave", "password": PASSWORD})

    assert response.status_code == 200
    user = get_user_model().objects.get(username="dave")
    assert response.json() == {
        "user": {
            "id": user.pk,
            "username": "dave",
            "is_admin": False,
            "experiment_permissions": [],
            "registered_model_permissions": [],
        }
    }
    assert user.check_password(PASSWORD) and not user.is_superuser


def test_creating_users_is_for_admins_and_names_are_unique(api, root, alice):
    error(api(alice).post(f"{V2}/users/create", {"username": "dave", "password": PASSWORD}), 403, "PERMISSION_DENIED")
    error(
        api(root).post(f"{V2}/users/create", {"username": "alice", "password": PASSWORD}),
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    error(api(root).post(f"{V2}/users/create", {"username": "dave"}), 400, "INVALID_PARAMETER_VALUE")
    error(
        api(root).post(f"{V2}/users/create", {"username": "dave", "password": "dave"}), 400, "INVALID_PARAMETER_VALUE"
    )


def test_a_user_reads_their_own_account_with_their_grants(api, alice, experiment):
    registered_model_create(actor=alice, name="churn-model")

    user = api(alice).get(f"{V2}/users/get", username="alice").json()["user"]

    assert user["username"] == "alice" and user["is_admin"] is False
    assert user["experiment_permissions"] == [
        {"experiment_id": str(experiment.pk), "user_id": alice.pk, "permission": "MANAGE"}
    ]
    assert user["registered_model_permissions"] == [
        {"workspace": "default", "name": "churn-model", "user_id": alice.pk, "permission": "MANAGE"}
    ]


def test_only_admins_read_other_accounts_as_in_mlflow(api, root, alice, bob):
    # Someone else's account is PERMISSION_DENIED whether it exists or not: no probing.
    error(api(alice).get(f"{V2}/users/get", username="bob"), 403, "PERMISSION_DENIED")
    error(api(alice).get(f"{V2}/users/get", username="nobody"), 403, "PERMISSION_DENIED")

    assert api(root).get(f"{V2}/users/get", username="bob").json()["user"]["id"] == bob.pk
    error(api(root).get(f"{V2}/users/get", username="nobody"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_current_answers_who_is_signed_in(api, root):
    assert api(root).get(f"{V2}/users/current").json() == {
        "user": {"id": root.pk, "username": "root", "is_admin": True},
        "is_basic_auth": True,
    }


def test_everyone_lists_users_but_sees_only_their_own_roles(api, root, alice, bob, team):
    for user in (alice, bob):
        services.team_member_add(actor=root, team_id=team.pk, username=user.username)

    as_alice = {u["username"]: u for u in api(alice).get(f"{V2}/users/list").json()["users"]}
    as_root = {u["username"]: u for u in api(root).get(f"{V2}/users/list").json()["users"]}

    assert list(as_alice) == ["alice", "bob", "root"]
    assert as_alice["alice"]["roles"][0]["name"] == "growth"
    assert as_alice["bob"]["roles"] == []
    assert as_alice["root"] == {"id": root.pk, "username": "root", "is_admin": True, "roles": []}
    assert [r["id"] for r in as_root["bob"]["roles"]] == [team.pk]


def test_changing_ones_own_password_needs_the_current_one(api, client, alice):
    url = f"{V2}/users/update-password"
    as_alice = api(alice)
    error(as_alice.patch(url, {"username": "alice", "password": "a new passphrase 7"}), 400, "INVALID_PARAMETER_VALUE")
    body = {"username": "alice", "password": "a new passphrase 7", "current_password": "wrong"}
    error(as_alice.patch(url, body), 400, "INVALID_PARAMETER_VALUE")
    body = {"username": "alice", "password": PASSWORD, "current_password": PASSWORD}
    error(as_alice.patch(url, body), 400, "INVALID_PARAMETER_VALUE")

    body = {"username": "alice", "password": "a new passphrase 7", "current_password": PASSWORD}
    assert as_alice.patch(url, body).status_code == 200

    assert client.get(f"{V2}/users/current", **basic("alice", "a new passphrase 7")).status_code == 200
    assert client.get(f"{V2}/users/current", **basic("alice", PASSWORD)).status_code == 401


def test_only_admins_set_other_users_passwords(api, root, alice, bob):
    url = f"{V2}/users/update-password"
    error(api(alice).patch(url, {"username": "bob", "password": "a new passphrase 7"}), 403, "PERMISSION_DENIED")

    assert api(root).patch(url, {"username": "bob", "password": "a new passphrase 7"}).status_code == 200
    bob.refresh_from_db()
    assert bob.check_password("a new passphrase 7")


def test_update_admin_makes_a_superuser_and_staff_and_is_for_admins(api, root, alice, bob):
    url = f"{V2}/users/update-admin"
    error(api(alice).patch(url, {"username": "alice", "is_admin": True}), 403, "PERMISSION_DENIED")
    error(api(root).patch(url, {"username": "bob"}), 400, "INVALID_PARAMETER_VALUE")

    assert api(root).patch(url, {"username": "bob", "is_admin": True}).json() == {}
    bob.refresh_from_db()
    assert bob.is_superuser and bob.is_staff

    assert api(root).patch(url, {"username": "bob", "is_admin": False}).status_code == 200
    error(api(root).patch(url, {"username": "root", "is_admin": False}), 400, "INVALID_STATE")


def test_deleting_users_is_for_admins_and_not_oneself(api, root, alice, bob):
    url = f"{V2}/users/delete"
    error(api(alice).delete(url, {"username": "bob"}), 403, "PERMISSION_DENIED")
    error(api(root).delete(url, {"username": "root"}), 400, "INVALID_STATE")
    error(api(root).delete(url, {"username": "nobody"}), 404, "RESOURCE_DOES_NOT_EXIST")

    assert api(root).delete(url, {"username": "bob"}).json() == {}
    assert not get_user_model().objects.filter(username="bob").exists()


# ---------------------------------------------------------------- per-user grants


@pytest.mark.parametrize(
    "resource_type", ["prompt", "scorer", "gateway_secret", "gateway_endpoint", "mcp_server", "workspace", "run", "x"]
)
def test_resource_types_the_portal_has_not_are_invalid_parameter_value(api, root, bob, resource_type):
    body = {"username": "bob", "resource_type": resource_type, "resource_id": "1", "permission": "READ"}
    error(api(root).post(f"{V3}/users/permissions/grant", body), 400, "INVALID_PARAMETER_VALUE")
    error(api(root).post(f"{V3}/users/permissions/revoke", body), 400, "INVALID_PARAMETER_VALUE")
    query = {k: body[k] for k in ("username", "resource_type", "resource_id")}
    error(api(root).get(f"{V3}/users/permissions/get", **query), 400, "INVALID_PARAMETER_VALUE")
    role = services.team_create(actor=root, name=f"r-{resource_type}")
    body = {"role_id": role.pk, "resource_type": resource_type, "resource_pattern": "*", "permission": "READ"}
    error(api(root).post(f"{V3}/roles/permissions/add", body), 400, "INVALID_PARAMETER_VALUE")


def test_grant_then_a_second_grant_is_already_exists_until_revoked(api, alice, bob, experiment):
    grant = {"username": "bob", "resource_type": "experiment", "resource_id": str(experiment.pk)}
    as_alice = api(alice)

    assert as_alice.post(f"{V3}/users/permissions/grant", {**grant, "permission": "EDIT"}).json() == {}
    assert permissions.level_of(bob, experiment) == "EDIT"
    error(
        as_alice.post(f"{V3}/users/permissions/grant", {**grant, "permission": "READ"}), 400, "RESOURCE_ALREADY_EXISTS"
    )

    assert as_alice.post(f"{V3}/users/permissions/revoke", grant).json() == {}
    error(as_alice.post(f"{V3}/users/permissions/revoke", grant), 404, "RESOURCE_DOES_NOT_EXIST")
    assert as_alice.post(f"{V3}/users/permissions/grant", {**grant, "permission": "MANAGE"}).status_code == 200


def test_grant_input_is_checked(api, alice, experiment):
    grant = {"username": "bob", "resource_type": "experiment", "resource_id": str(experiment.pk)}
    url = f"{V3}/users/permissions/grant"
    error(api(alice).post(url, {**grant, "permission": "OWNER"}), 400, "INVALID_PARAMETER_VALUE")
    error(api(alice).post(url, {**grant, "permission": "APPROVE"}), 400, "INVALID_PARAMETER_VALUE")
    error(api(alice).post(url, {**grant, "resource_id": "*", "permission": "READ"}), 400, "INVALID_PARAMETER_VALUE")
    error(api(alice).post(url, {**grant, "username": "nobody", "permission": "READ"}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(
        api(alice).post(url, {**grant, "resource_id": "424242", "permission": "READ"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )


def test_no_permissions_is_granted_as_deny(api, alice, bob, experiment):
    grant = {"username": "bob", "resource_type": "experiment", "resource_id": str(experiment.pk)}
    assert (
        api(alice).post(f"{V3}/users/permissions/grant", {**grant, "permission": "NO_PERMISSIONS"}).status_code == 200
    )

    assert api(alice).get(f"{V3}/users/permissions/get", **grant).json() == {"allowed": False, "permission": "DENY"}
    assert not permissions.can(bob, permissions.READ, experiment)


def test_only_managers_grant(api, settings, alice, bob, charlie, experiment):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"
    permissions.grant_create(actor=alice, root=experiment, level="EDIT", user=bob)
    grant = {
        "username": "charlie",
        "resource_type": "experiment",
        "resource_id": str(experiment.pk),
        "permission": "READ",
    }

    error(api(bob).post(f"{V3}/users/permissions/grant", grant), 403, "PERMISSION_DENIED")
    error(api(charlie).post(f"{V3}/users/permissions/grant", grant), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api(bob).post(f"{V3}/users/permissions/revoke", grant), 403, "PERMISSION_DENIED")


def test_a_registered_model_is_named_by_its_name(api, alice, bob):
    model = registered_model_create(actor=alice, name="churn-model")
    grant = {"username": "bob", "resource_type": "registered_model", "resource_id": "churn-model"}

    assert api(alice).post(f"{V3}/users/permissions/grant", {**grant, "permission": "USE"}).status_code == 200

    assert permissions.level_of(bob, model) == "USE"
    assert api(bob).get(f"{V3}/users/permissions/get", **grant).json() == {"allowed": True, "permission": "USE"}


def test_the_last_manage_grant_stays(api, alice, experiment):
    grant = {"username": "alice", "resource_type": "experiment", "resource_id": str(experiment.pk)}
    error(api(alice).post(f"{V3}/users/permissions/revoke", grant), 400, "INVALID_STATE")


def test_get_answers_the_effective_level_through_teams(api, settings, root, alice, bob, experiment, team):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"
    query = {"username": "bob", "resource_type": "experiment", "resource_id": str(experiment.pk)}
    url = f"{V3}/users/permissions/get"
    assert api(root).get(url, **query).json() == {"allowed": False, "permission": "NO_PERMISSIONS"}

    services.team_member_add(actor=root, team_id=team.pk, username="bob")
    permissions.grant_create(actor=alice, root=experiment, level="READ", team=team)
    assert api(root).get(url, **query).json() == {"allowed": False, "permission": "READ"}
    services.team_default_set(actor=root, team_id=team.pk, resource_type="experiment", level="EDIT")
    assert api(alice).get(url, **query).json() == {"allowed": True, "permission": "EDIT"}
    assert api(bob).get(url, **query).json() == {"allowed": True, "permission": "EDIT"}

    permissions.grant_create(actor=alice, root=experiment, level="DENY", user=bob)
    assert api(root).get(url, **query).json() == {"allowed": False, "permission": "DENY"}
    # bob may no longer read it: to him it is as if it did not exist.
    assert api(bob).get(url, **query).json() == {"allowed": False, "permission": "NO_PERMISSIONS"}

    root_query = {**query, "username": "root"}
    assert api(alice).get(url, **root_query).json() == {"allowed": True, "permission": "MANAGE"}


def test_get_about_others_is_for_admins_and_managers(api, settings, alice, bob, charlie, experiment):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"
    permissions.grant_create(actor=alice, root=experiment, level="READ", user=bob)
    query = {"username": "alice", "resource_type": "experiment", "resource_id": str(experiment.pk)}
    url = f"{V3}/users/permissions/get"

    error(api(bob).get(url, **query), 403, "PERMISSION_DENIED")
    error(api(charlie).get(url, **query), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api(alice).get(url, **{**query, "username": "nobody"}), 404, "RESOURCE_DOES_NOT_EXIST")
    # A missing object is nothing to report, as in MLflow.
    assert api(bob).get(url, **{**query, "username": "bob", "resource_id": "424242"}).json() == {
        "allowed": False,
        "permission": "NO_PERMISSIONS",
    }


def test_permission_lists_show_direct_grants_and_team_rights(api, settings, root, alice, bob, experiment, team):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"
    services.team_member_add(actor=root, team_id=team.pk, username="bob")
    permissions.grant_create(actor=alice, root=experiment, level="READ", user=bob)
    team_grant = permissions.grant_create(actor=alice, root=experiment, level="EDIT", team=team)
    default = services.team_default_set(actor=root, team_id=team.pk, resource_type="registered_model", level="USE")
    hidden = make_experiment(owner=alice, name="hidden")
    permissions.grant_create(actor=alice, root=hidden, level="READ", team=team)

    mine = api(bob).get(f"{V3}/users/current/permissions").json()
    as_root = api(root).get(f"{V3}/users/permissions/list", username="bob").json()

    direct = {
        "role_id": None,
        "role_name": f"__user_{bob.pk}__",
        "workspace": "default",
        "resource_type": "experiment",
        "resource_pattern": str(experiment.pk),
        "permission": "READ",
    }
    team_rows = [
        {**direct, "role_id": team.pk, "role_name": "growth", "permission": "EDIT"},
        {**direct, "role_id": team.pk, "role_name": "growth", "resource_pattern": str(hidden.pk)},
        {
            **direct,
            "role_id": team.pk,
            "role_name": "growth",
            "resource_type": "registered_model",
            "resource_pattern": "*",
            "permission": "USE",
        },
    ]
    assert as_root == {"is_admin": False, "permissions": [direct, *team_rows]}
    # bob sees the hidden experiment through his team, so its grant is listed for him too.
    assert mine == as_root
    assert team_grant.id and permissions.team_default_id(default)

    permissions.grant_create(actor=alice, root=hidden, level="DENY", user=bob)
    mine = api(bob).get(f"{V3}/users/current/permissions").json()
    assert str(hidden.pk) not in {row["resource_pattern"] for row in mine["permissions"]}
    error(api(alice).get(f"{V3}/users/permissions/list", username="bob"), 403, "PERMISSION_DENIED")


# ---------------------------------------------------------------- roles


def test_an_admin_creates_a_role_in_the_default_workspace(api, root, alice):
    body = {"workspace": "default", "name": "growth", "description": "The growth team"}
    response = api(root).post(f"{V3}/roles/create", body)

    team = Group.objects.get(name="growth")
    assert response.json() == {
        "role": {
            "id": team.pk,
            "name": "growth",
            "workspace": "default",
            "description": "The growth team",
            "permissions": [],
        }
    }
    assert services.team_profile(team).description == "The growth team"
    error(api(root).post(f"{V3}/roles/create", body), 400, "RESOURCE_ALREADY_EXISTS")
    error(api(alice).post(f"{V3}/roles/create", {**body, "name": "other"}), 403, "PERMISSION_DENIED")
    error(api(root).post(f"{V3}/roles/create", {**body, "workspace": "research"}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api(root).post(f"{V3}/roles/create", {"workspace": "default", "name": " "}), 400, "INVALID_PARAMETER_VALUE")


def test_roles_are_listed_got_updated_and_deleted(api, root, alice, team):
    listed = api(alice).get(f"{V3}/roles/list", workspace="default").json()["roles"]
    assert [r["id"] for r in listed] == [team.pk]
    assert api(root).get(f"{V3}/roles/list").json()["roles"] == listed
    error(api(alice).get(f"{V3}/roles/list", workspace="research"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert api(alice).get(f"{V3}/roles/get", role_id=str(team.pk)).json()["role"] == listed[0]
    error(api(alice).get(f"{V3}/roles/get", role_id="424242"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api(alice).get(f"{V3}/roles/get", role_id="abc"), 400, "INVALID_PARAMETER_VALUE")

    error(api(root).patch(f"{V3}/roles/update", {"role_id": team.pk}), 400, "INVALID_PARAMETER_VALUE")
    error(api(alice).patch(f"{V3}/roles/update", {"role_id": team.pk, "name": "x"}), 403, "PERMISSION_DENIED")
    role = api(root).patch(f"{V3}/roles/update", {"role_id": team.pk, "name": "growth-2"}).json()["role"]
    assert role["name"] == "growth-2" and role["description"] == "The growth team"

    error(api(alice).delete(f"{V3}/roles/delete", {"role_id": team.pk}), 403, "PERMISSION_DENIED")
    assert api(root).delete(f"{V3}/roles/delete", {"role_id": team.pk}).json() == {}
    assert not Group.objects.filter(pk=team.pk).exists()


def test_role_permissions_are_team_grants_and_defaults(api, root, alice, experiment, team):
    url = f"{V3}/roles/permissions/add"
    on_experiment = {"role_id": team.pk, "resource_type": "experiment", "resource_pattern": str(experiment.pk)}
    on_every_model = {"role_id": team.pk, "resource_type": "registered_model", "resource_pattern": "*"}

    # A manager of the experiment may grant it to a team; defaults are for admins.
    added = api(alice).post(url, {**on_experiment, "permission": "READ"}).json()["role_permission"]
    error(api(alice).post(url, {**on_every_model, "permission": "READ"}), 403, "PERMISSION_DENIED")
    default = api(root).post(url, {**on_every_model, "permission": "NO_PERMISSIONS"}).json()["role_permission"]

    grant = permissions.grant_get(added["id"])
    assert (grant.team, grant.root, grant.level) == (team, experiment, "READ")
    row = TeamDefaultGrant.objects.get(pk=permissions.team_default_pk(default["id"]))
    assert (row.team_id, row.resource_type, row.level) == (team.pk, "registered_model", "DENY")
    assert added == {"id": grant.id, **on_experiment, "permission": "READ"}
    assert default == {
        "id": permissions.team_default_id(row),
        "role_id": team.pk,
        "resource_type": "registered_model",
        "resource_pattern": "*",
        "permission": "DENY",
    }

    error(api(alice).post(url, {**on_experiment, "permission": "EDIT"}), 400, "RESOURCE_ALREADY_EXISTS")
    error(api(root).post(url, {**on_every_model, "permission": "READ"}), 400, "RESOURCE_ALREADY_EXISTS")
    row.refresh_from_db()
    assert row.level == "DENY"

    listed = api(alice).get(f"{V3}/roles/permissions/list", role_id=str(team.pk)).json()["role_permissions"]
    assert listed == [added, default]
    assert api(alice).get(f"{V3}/roles/get", role_id=str(team.pk)).json()["role"]["permissions"] == listed

    updated = api(alice).patch(
        f"{V3}/roles/permissions/update", {"role_permission_id": added["id"], "permission": "EDIT"}
    )
    assert updated.json()["role_permission"] == {**added, "permission": "EDIT"}
    body = {"role_permission_id": default["id"], "permission": "READ"}
    error(api(alice).patch(f"{V3}/roles/permissions/update", body), 403, "PERMISSION_DENIED")
    assert api(root).patch(f"{V3}/roles/permissions/update", body).json()["role_permission"]["permission"] == "READ"

    remove = f"{V3}/roles/permissions/remove"
    error(api(alice).delete(remove, {"role_permission_id": default["id"]}), 403, "PERMISSION_DENIED")
    assert api(alice).delete(remove, {"role_permission_id": added["id"]}).json() == {}
    assert api(root).delete(remove, {"role_permission_id": default["id"]}).json() == {}
    assert api(root).get(f"{V3}/roles/permissions/list", role_id=str(team.pk)).json() == {"role_permissions": []}
    error(api(root).delete(remove, {"role_permission_id": added["id"]}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_a_role_permission_id_names_team_rights_only(api, settings, root, alice, bob, charlie, experiment, team):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"
    user_grant = permissions.grant_create(actor=alice, root=experiment, level="READ", user=bob)
    team_grant = permissions.grant_create(actor=alice, root=experiment, level="READ", team=team)

    for permission_id in (user_grant.id, 424242 * 8 + 1, 424242 * 8 + 7):
        body = {"role_permission_id": permission_id}
        error(api(root).delete(f"{V3}/roles/permissions/remove", body), 404, "RESOURCE_DOES_NOT_EXIST")
    # Hidden from charlie: the same answer as a missing one.
    body = {"role_permission_id": team_grant.id}
    message = error(api(charlie).delete(f"{V3}/roles/permissions/remove", body), 404, "RESOURCE_DOES_NOT_EXIST")
    assert message == f"Role permission with id={team_grant.id} not found"
    error(api(bob).delete(f"{V3}/roles/permissions/remove", body), 403, "PERMISSION_DENIED")
    # Nor does charlie see that grant in the role's permissions.
    assert api(charlie).get(f"{V3}/roles/permissions/list", role_id=str(team.pk)).json() == {"role_permissions": []}


def test_assign_and_unassign_are_team_membership(api, root, alice, bob, team):
    body = {"username": "bob", "role_id": team.pk}
    error(api(alice).post(f"{V3}/roles/assign", body), 403, "PERMISSION_DENIED")
    services.team_admin_set(actor=root, team_id=team.pk, username="alice", is_admin=True)

    assignment = api(alice).post(f"{V3}/roles/assign", body).json()["assignment"]

    membership = get_user_model().groups.through.objects.get(user=bob, group=team)
    assert assignment == {"id": membership.pk, "user_id": bob.pk, "role_id": team.pk}
    # Assigning again changes nothing (the portal's membership is idempotent).
    assert api(alice).post(f"{V3}/roles/assign", body).json()["assignment"] == assignment
    users = api(bob).get(f"{V3}/roles/users/list", role_id=str(team.pk)).json()["assignments"]
    assert {a["user_id"] for a in users} == {alice.pk, bob.pk} and assignment in users
    assert [r["id"] for r in api(bob).get(f"{V3}/users/roles/list", username="bob").json()["roles"]] == [team.pk]
    assert [r["id"] for r in api(root).get(f"{V3}/users/roles/list", username="bob").json()["roles"]] == [team.pk]
    error(api(bob).get(f"{V3}/users/roles/list", username="alice"), 403, "PERMISSION_DENIED")

    assert api(alice).delete(f"{V3}/roles/unassign", body).json() == {}
    assert not bob.groups.exists()
    error(api(alice).delete(f"{V3}/roles/unassign", body), 404, "RESOURCE_DOES_NOT_EXIST")
    error(
        api(root).post(f"{V3}/roles/assign", {"username": "nobody", "role_id": team.pk}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    error(api(root).post(f"{V3}/roles/assign", {"username": "bob", "role_id": 424242}), 404, "RESOURCE_DOES_NOT_EXIST")


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize(
    "prefix", ["/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow"]
)
def test_every_prefix_serves_the_auth_api(api, root, prefix):
    assert api(root).get(f"{prefix}/users/current").json()["user"]["username"] == "root"
    assert api(root).get(f"{prefix}/roles/list", workspace="default").status_code == 200


def test_a_wrong_method_and_no_credentials_get_mlflow_errors(client, api, root):
    error(api(root).get(f"{V2}/users/create"), 405, "ENDPOINT_NOT_FOUND")
    error(client.get(f"{V2}/users/current"), 401, "UNAUTHENTICATED")
    error(client.post(f"{V3}/roles/create", "{}", content_type="application/json"), 401, "UNAUTHENTICATED")
