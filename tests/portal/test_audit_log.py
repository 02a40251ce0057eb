"""The audit log of the portal's governance changes: each service writes one event in its
own transaction (users, teams, memberships, team admins and defaults, grants, tokens), the
HTTP request behind it is recorded, the log is append-only down to the database, and the
Django admin shows it read-only and audits its own changes to users, teams and tokens."""

import json

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction

from portal import permissions, services
from portal.errors import AlreadyExists, Conflict
from portal.models import ApiToken, AuditEvent, AuditLogIsAppendOnly, TeamDefaultGrant
from tests.conftest import PASSWORD
from tests.factories import make_experiment
from tests.native_api import V1, post, signed_in
from tests.portal.helpers import bearer

pytestmark = pytest.mark.django_db

User = get_user_model()


def events(action: str | None = None) -> list[AuditEvent]:
    """Events oldest first, optionally of one action."""
    found = AuditEvent.objects.order_by("id")
    return list(found.filter(action=action) if action else found)


def only(action: str) -> AuditEvent:
    [event] = events(action)
    return event


@pytest.fixture
def experiment(alice):
    return make_experiment(owner=alice, name="churn-training")


@pytest.fixture
def team(root):
    return services.team_create(actor=root, name="ml", description="Machine learning")


# ---------------------------------------------------------------- users


def test_creating_a_user_is_audited_without_the_password(root):
    user = services.user_create(actor=root, username="dora", password=PASSWORD, email="dora@example.com")

    event = only("user.created")
    assert (event.actor_id, event.actor_username) == (root.pk, "root")
    assert (event.object_type, event.object_id, event.object_name) == ("user", str(user.pk), "dora")
    assert event.before is None
    assert event.after == {"username": "dora", "email": "dora@example.com", "is_admin": False, "is_active": True}
    assert PASSWORD not in json.dumps(event.after)


def test_a_password_change_is_audited_as_having_happened_and_nothing_more(root, alice):
    new_password = "a brand new passphrase 42"
    services.user_update_password(actor=root, username="alice", password=new_password)

    event = only("user.password_changed")
    assert (event.actor_username, event.object_name, event.before, event.after) == ("root", "alice", None, None)
    alice.refresh_from_db()
    logged = json.dumps([[e.before, e.after, e.object_name] for e in events()])
    assert new_password not in logged
    assert alice.password not in logged


def test_changing_ones_own_password_is_audited_with_oneself_as_actor(alice):
    services.user_password_change(
        actor=alice, username="alice", password="a brand new passphrase 42", current_password=PASSWORD
    )

    assert only("user.password_changed").actor_username == "alice"


def test_promoting_a_user_is_audited_and_promoting_again_is_not(root, alice):
    services.user_update_admin(actor=root, username="alice", is_admin=True)
    services.user_update_admin(actor=root, username="alice", is_admin=True)

    event = only("user.admin_changed")
    assert (event.object_name, event.before, event.after) == ("alice", {"is_admin": False}, {"is_admin": True})


def test_a_refused_demotion_leaves_no_event(root):
    with pytest.raises(Conflict):
        services.user_update_admin(actor=root, username="root", is_admin=False)

    assert events("user.admin_changed") == []


def test_deleting_a_user_audits_the_account_and_each_grant_that_goes_with_it(root, alice, bob, experiment, team):
    services.team_member_add(actor=root, team_id=team.pk, username="bob")
    grant = permissions.grant_create(actor=alice, root=experiment, level="EDIT", user=bob)

    services.user_delete(actor=root, username="bob")

    deleted = only("user.deleted")
    assert (deleted.actor_username, deleted.object_id, deleted.after) == ("root", str(bob.pk), None)
    assert deleted.before == {
        "username": "bob",
        "email": "bob@example.com",
        "is_admin": False,
        "is_active": True,
        "teams": ["ml"],
    }
    revoked = only("grant.revoked")
    assert (revoked.object_id, revoked.before, revoked.after) == (str(grant.id), {"level": "EDIT", "user": "bob"}, None)
    assert (revoked.resource_type, revoked.resource_id) == ("experiment", str(experiment.pk))
    assert revoked.request_id == deleted.request_id


# ---------------------------------------------------------------- teams


def test_creating_a_team_is_audited(root, team):
    event = only("team.created")
    assert (event.actor_username, event.object_type, event.object_id, event.object_name) == (
        "root",
        "team",
        str(team.pk),
        "ml",
    )
    assert event.after == {"name": "ml", "description": "Machine learning"}


def test_updating_a_team_records_only_what_changed(root, team):
    services.team_update(actor=root, team_id=team.pk, name="ml-platform", description="Machine learning")

    event = only("team.updated")
    assert (event.object_name, event.before, event.after) == ("ml-platform", {"name": "ml"}, {"name": "ml-platform"})


def test_an_update_that_changes_nothing_is_not_audited(root, team):
    services.team_update(actor=root, team_id=team.pk, name="ml", description="Machine learning")

    assert events("team.updated") == []


def test_deleting_a_team_audits_its_members_admins_defaults_and_grants(root, alice, bob, experiment, team):
    services.team_admin_set(actor=root, team_id=team.pk, username="alice", is_admin=True)
    services.team_member_add(actor=root, team_id=team.pk, username="bob")
    services.team_default_set(actor=root, team_id=team.pk, resource_type="experiment", level="READ")
    grant = permissions.grant_create(actor=alice, root=experiment, level="EDIT", team=team)

    services.team_delete(actor=root, team_id=team.pk)

    event = only("team.deleted")
    assert event.before == {
        "name": "ml",
        "description": "Machine learning",
        "members": ["alice", "bob"],
        "admins": ["alice"],
        "defaults": {"experiment": "READ"},
    }
    revoked = only("grant.revoked")
    assert (revoked.object_id, revoked.before) == (str(grant.id), {"level": "EDIT", "team": "ml"})


def test_adding_a_member_is_audited_once(root, alice, team):
    services.team_member_add(actor=root, team_id=team.pk, username="alice")
    services.team_member_add(actor=root, team_id=team.pk, username="alice")

    event = only("team.member_added")
    assert (event.object_id, event.object_name, event.after) == (str(team.pk), "ml", {"user": "alice"})


def test_a_team_admin_adding_a_member_is_the_actor(root, alice, bob, team):
    services.team_admin_set(actor=root, team_id=team.pk, username="alice", is_admin=True)

    services.team_member_add(actor=alice, team_id=team.pk, username="bob")

    assert events("team.member_added")[-1].actor_username == "alice"


def test_removing_a_member_records_whether_they_were_a_team_admin(root, alice, team):
    services.team_admin_set(actor=root, team_id=team.pk, username="alice", is_admin=True)

    services.team_member_remove(actor=root, team_id=team.pk, username="alice")

    assert only("team.member_removed").before == {"user": "alice", "admin": True}


def test_making_a_team_admin_audits_the_membership_and_the_role(root, alice, team):
    services.team_admin_set(actor=root, team_id=team.pk, username="alice", is_admin=True)
    services.team_admin_set(actor=root, team_id=team.pk, username="alice", is_admin=True)
    services.team_admin_set(actor=root, team_id=team.pk, username="alice", is_admin=False)

    assert only("team.member_added").after == {"user": "alice"}
    granted, taken = events("team.admin_changed")
    assert (granted.before, granted.after) == ({"user": "alice", "admin": False}, {"user": "alice", "admin": True})
    assert (taken.before, taken.after) == ({"user": "alice", "admin": True}, {"user": "alice", "admin": False})


# ---------------------------------------------------------------- team defaults


def test_setting_a_team_default_is_audited_with_the_level_before_and_after(root, team):
    row = services.team_default_set(actor=root, team_id=team.pk, resource_type="experiment", level="READ")
    services.team_default_set(actor=root, team_id=team.pk, resource_type="experiment", level="READ")
    services.team_default_set(actor=root, team_id=team.pk, resource_type="experiment", level="EDIT")

    first, second = events("team_default.set")
    assert (first.object_type, first.object_id, first.object_name) == (
        "team_default",
        str(permissions.team_default_id(row)),
        "ml",
    )
    assert (first.before, first.after) == (None, {"team": "ml", "resource_type": "experiment", "level": "READ"})
    assert (second.before["level"], second.after["level"]) == ("READ", "EDIT")


def test_removing_a_team_default_is_audited(root, team):
    row = services.team_default_set(actor=root, team_id=team.pk, resource_type="registered_model", level="DENY")

    services.team_default_remove(actor=root, row_id=row.pk)

    event = only("team_default.removed")
    assert (event.before, event.after) == ({"team": "ml", "resource_type": "registered_model", "level": "DENY"}, None)
    assert not TeamDefaultGrant.objects.exists()


def test_a_duplicate_team_default_rolls_its_event_back(root, team):
    services.team_default_add(actor=root, team_id=team.pk, resource_type="experiment", level="READ")

    with pytest.raises(AlreadyExists):
        services.team_default_add(actor=root, team_id=team.pk, resource_type="experiment", level="EDIT")

    assert [e.after["level"] for e in events("team_default.set")] == ["READ"]


# ---------------------------------------------------------------- grants


def test_the_creators_manage_grant_is_audited_on_the_new_object(alice, experiment):
    event = only("grant.created")

    assert (event.actor_username, event.object_type) == ("alice", "grant")
    assert (event.resource_type, event.resource_id) == ("experiment", str(experiment.pk))
    assert event.after == {"level": "MANAGE", "user": "alice"}
    assert event.object_id == str(permissions.grants_on(experiment)[0].id)


def test_granting_changing_and_revoking_are_audited_on_the_object(alice, bob, experiment):
    grant = permissions.grant_create(actor=alice, root=experiment, level="READ", user=bob)
    permissions.grant_update(actor=alice, root=experiment, level="EDIT", user=bob)
    permissions.grant_update(actor=alice, root=experiment, level="EDIT", user=bob)  # no change, no event
    permissions.grant_revoke(actor=alice, root=experiment, user=bob)

    created, updated, revoked = events()[-3:]
    assert [e.action for e in (created, updated, revoked)] == ["grant.created", "grant.updated", "grant.revoked"]
    for event in (created, updated, revoked):
        assert (event.actor_username, event.object_type, event.object_id) == ("alice", "grant", str(grant.id))
        assert (event.resource_type, event.resource_id) == ("experiment", str(experiment.pk))
        assert event.object_name == "User 'bob' on experiment 'churn-training'"
    assert (created.before, created.after) == (None, {"level": "READ", "user": "bob"})
    assert (updated.before, updated.after) == ({"level": "READ", "user": "bob"}, {"level": "EDIT", "user": "bob"})
    assert (revoked.before, revoked.after) == ({"level": "EDIT", "user": "bob"}, None)


def test_a_team_grant_names_the_team(alice, experiment, team):
    permissions.grant_create(actor=alice, root=experiment, level="USE", team=team)

    assert events("grant.created")[-1].after == {"level": "USE", "team": "ml"}


def test_a_refused_grant_change_leaves_no_event(alice, experiment):
    before = AuditEvent.objects.count()

    with pytest.raises(Conflict):
        permissions.grant_revoke(actor=alice, root=experiment, user=alice)  # the last MANAGE grant

    assert AuditEvent.objects.count() == before


# ---------------------------------------------------------------- tokens


def test_creating_a_token_is_audited_by_its_prefix_never_the_token(alice):
    created = services.api_token_create(user=alice, name="ci")

    event = only("token.created")
    assert (event.actor_username, event.object_type, event.object_id, event.object_name) == (
        "alice",
        "token",
        str(created.token.pk),
        "ci",
    )
    assert event.after == {"name": "ci", "prefix": created.token.prefix, "user": "alice", "revoked": False}
    logged = json.dumps([event.before, event.after])
    assert created.raw not in logged and created.token.digest not in logged


def test_revoking_a_token_is_audited_once(alice):
    created = services.api_token_create(user=alice, name="ci")

    services.api_token_revoke(user=alice, token_id=created.token.pk)
    services.api_token_revoke(user=alice, token_id=created.token.pk)

    event = only("token.revoked")
    assert (event.before["revoked"], event.after["revoked"]) == (False, True)


# ---------------------------------------------------------------- transactions


def test_a_rolled_back_change_leaves_no_event(root):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.team_create(actor=root, name="ml")
        raise RuntimeError("something later in the same transaction failed")

    assert events() == []


# ---------------------------------------------------------------- the request behind a change


def test_an_event_made_through_the_native_api_carries_the_request_id_and_client_address(client, root):
    response = post(
        signed_in(client, root), V1 + "teams/", {"name": "ml"}, HTTP_X_REQUEST_ID="req-42", REMOTE_ADDR="10.1.2.3"
    )

    assert response.status_code == 201
    assert response["X-Request-ID"] == "req-42"
    event = only("team.created")
    assert (event.request_id, event.client_address) == ("req-42", "10.1.2.3")


def test_an_event_made_through_the_mlflow_door_carries_the_request_id(client, alice, bob, experiment):
    token = services.api_token_create(user=alice, name="tests").raw

    response = client.post(
        "/api/2.0/mlflow/users/permissions/grant",
        json.dumps(
            {"username": "bob", "resource_type": "experiment", "resource_id": str(experiment.pk), "permission": "READ"}
        ),
        content_type="application/json",
        HTTP_X_REQUEST_ID="mlflow-7",
        **bearer(token),
    )

    assert response.status_code == 200, response.content
    event = events("grant.created")[-1]
    assert (event.actor_username, event.request_id, event.client_address) == ("alice", "mlflow-7", "127.0.0.1")


def test_a_request_without_an_id_gets_one_made_up(client, root):
    response = post(signed_in(client, root), V1 + "teams/", {"name": "ml"})

    event = only("team.created")
    assert len(event.request_id) == 32
    assert response["X-Request-ID"] == event.request_id


def test_a_change_outside_a_request_has_no_request_id(root):
    services.team_create(actor=root, name="ml")

    event = only("team.created")
    assert (event.request_id, event.client_address) == ("", None)


def test_the_first_administrator_is_audited_as_created_by_no_one(monkeypatch):
    from django.core.management import call_command

    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "admin")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("ensure_admin")

    event = only("user.created")
    assert (event.actor_id, event.actor_username, event.object_name) == (None, "", "admin")
    assert event.after["is_admin"] is True


# ---------------------------------------------------------------- append-only


@pytest.fixture
def event(root):
    services.team_create(actor=root, name="ml")
    return only("team.created")


def test_saving_an_existing_event_is_refused(event):
    event.action = "team.forged"

    with pytest.raises(AuditLogIsAppendOnly):
        event.save()


def test_deleting_an_event_is_refused(event):
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()


def test_queryset_updates_and_deletes_are_refused(event):
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(action="team.forged")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.bulk_update([event], ["action"])

    assert AuditEvent.objects.get(pk=event.pk).action == "team.created"


def test_the_database_refuses_a_raw_update(event):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE portal_auditevent SET action = %s WHERE id = %s", ["team.forged", event.pk])

    assert AuditEvent.objects.get(pk=event.pk).action == "team.created"


def test_the_database_refuses_a_raw_delete_on_postgresql(event):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite refuses deletes in the model and the admin only (see migration 0003)")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM portal_auditevent WHERE id = %s", [event.pk])

    assert AuditEvent.objects.filter(pk=event.pk).exists()


# ---------------------------------------------------------------- the Django admin


def test_the_admin_shows_events_read_only(rf, root):
    event_admin = admin.site._registry[AuditEvent]
    request = rf.get("/admin/portal/auditevent/")
    request.user = root

    assert not event_admin.has_add_permission(request)
    assert not event_admin.has_change_permission(request)
    assert not event_admin.has_delete_permission(request)
    assert event_admin.has_view_permission(request)
    assert "delete_selected" not in event_admin.get_actions(request)


def test_the_admin_lists_filters_and_searches_events(client, root, event):
    client.force_login(root)

    assert client.get("/admin/portal/auditevent/").status_code == 200
    assert client.get("/admin/portal/auditevent/?action=team.created&object_type=team").status_code == 200
    response = client.get("/admin/portal/auditevent/?q=ml")
    assert response.status_code == 200 and "team.created" in response.content.decode()
    assert client.get(f"/admin/portal/auditevent/{event.pk}/change/").status_code == 200


def test_the_admin_cannot_change_or_delete_an_event(client, root, event):
    client.force_login(root)

    assert client.post(f"/admin/portal/auditevent/{event.pk}/change/", {"action": "x"}).status_code == 403
    assert client.post(f"/admin/portal/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/portal/auditevent/add/").status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "team.created"


def _user_form(user, **changes):
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "groups": [],
        "user_permissions": [],
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_an_admin_change_of_a_user_is_audited(client, root, alice, team):
    client.force_login(root)

    response = client.post(
        f"/admin/auth/user/{alice.pk}/change/",
        _user_form(alice, email="a@example.org", is_superuser="on", groups=[team.pk]),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    promoted = only("user.admin_changed")
    assert (promoted.actor_username, promoted.before, promoted.after) == (
        "root",
        {"is_admin": False},
        {"is_admin": True},
    )
    updated = only("user.updated")
    assert (updated.before, updated.after) == ({"email": "alice@example.com"}, {"email": "a@example.org"})
    joined = only("team.member_added")
    assert (joined.object_id, joined.after) == (str(team.pk), {"user": "alice"})


def test_an_admin_user_creation_is_audited(client, root):
    client.force_login(root)

    response = client.post(
        "/admin/auth/user/add/",
        {"username": "dora", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    event = only("user.created")
    assert (event.actor_username, event.object_name) == ("root", "dora")


def test_an_admin_password_change_is_audited(client, root, alice):
    client.force_login(root)
    new_password = "a brand new passphrase 42"

    response = client.post(
        f"/admin/auth/user/{alice.pk}/password/",
        {"password1": new_password, "password2": new_password, "usable_password": "true"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    event = only("user.password_changed")
    assert (event.actor_username, event.object_name) == ("root", "alice")
    assert new_password not in json.dumps([event.before, event.after])


def test_an_admin_deletion_of_a_user_is_audited(client, root, alice, bob, experiment):
    permissions.grant_create(actor=alice, root=experiment, level="READ", user=bob)
    services.api_token_create(user=bob, name="ci")
    client.force_login(root)

    response = client.post(f"/admin/auth/user/{bob.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302, response.content.decode()[:2000]
    assert not User.objects.filter(username="bob").exists()
    assert only("user.deleted").actor_username == "root"
    assert only("grant.revoked").before == {"level": "READ", "user": "bob"}


def _group_form(name, *, description="", admins=(), defaults=(), team_row=None, default_rows=()):
    data = {
        "name": name,
        "permissions": [],
        "team-TOTAL_FORMS": "1",
        "team-INITIAL_FORMS": "1" if team_row else "0",
        "team-0-description": description,
        "team-0-admins": list(admins),
        "default_grants-TOTAL_FORMS": str(len(defaults)),
        "default_grants-INITIAL_FORMS": str(len(default_rows)),
    }
    if team_row:
        data["team-0-group"] = team_row
    for number, (resource_type, level) in enumerate(defaults):
        data[f"default_grants-{number}-resource_type"] = resource_type
        data[f"default_grants-{number}-level"] = level
        if number < len(default_rows):
            data[f"default_grants-{number}-id"] = default_rows[number]
    return data


def test_an_admin_team_creation_is_audited_with_its_admins_and_defaults(client, root, alice):
    client.force_login(root)

    response = client.post(
        "/admin/auth/group/add/",
        _group_form("ml", description="Machine learning", admins=[alice.pk], defaults=[("experiment", "READ")]),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    created = only("team.created")
    assert created.after == {"name": "ml", "description": "Machine learning", "permissions": []}
    assert only("team.admin_changed").after == {"user": "alice", "admin": True}
    assert only("team_default.set").after == {"team": "ml", "resource_type": "experiment", "level": "READ"}


def test_an_admin_team_change_is_audited(client, root, alice, team):
    row = services.team_default_set(actor=root, team_id=team.pk, resource_type="experiment", level="READ")
    client.force_login(root)

    response = client.post(
        f"/admin/auth/group/{team.pk}/change/",
        _group_form(
            "ml-platform",
            description="Machine learning",
            admins=[alice.pk],
            defaults=[("experiment", "EDIT")],
            team_row=team.pk,
            default_rows=[row.pk],
        ),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    updated = only("team.updated")
    assert (updated.before, updated.after) == ({"name": "ml"}, {"name": "ml-platform"})
    assert only("team.admin_changed").after == {"user": "alice", "admin": True}
    assert [(e.before["level"], e.after["level"]) for e in events("team_default.set")[1:]] == [("READ", "EDIT")]


def test_an_admin_team_deletion_is_audited(client, root, team):
    client.force_login(root)

    response = client.post(f"/admin/auth/group/{team.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert only("team.deleted").before["name"] == "ml"


def test_tokens_are_revoked_in_the_admin_through_the_service_and_never_edited(client, root, alice):
    created = services.api_token_create(user=alice, name="ci")
    client.force_login(root)

    response = client.post("/admin/portal/apitoken/", {"action": "revoke", "_selected_action": [created.token.pk]})

    assert response.status_code == 302
    assert ApiToken.objects.get(pk=created.token.pk).revoked_at is not None
    event = only("token.revoked")
    assert (event.actor_username, event.after["user"]) == ("root", "alice")
    assert client.post(f"/admin/portal/apitoken/{created.token.pk}/change/", {"name": "x"}).status_code == 403
