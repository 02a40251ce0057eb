"""The native API's grants and "who can see this" (grants/holders/): MANAGE holders and
superusers only; readers who may not manage get 403, those who may not read get 404."""

import pytest

from portal import permissions, services
from registry import services as registry_services
from tests.factories import make_experiment
from tests.native_api import V1, all_pages, patch, post, signed_in
from tracking.services.experiments import experiment_set_private


@pytest.fixture
def experiment(alice):
    return make_experiment(owner=alice, name="churn-training")


@pytest.fixture
def model(alice):
    return registry_services.registered_model_create(actor=alice, name="churn")


@pytest.fixture
def team(root, bob):
    team = services.team_create(actor=root, name="ml")
    services.team_member_add(actor=root, team_id=team.pk, username="bob")
    return team


def grants_url(resource_type: str, resource) -> str:
    return V1 + f"grants/?resource_type={resource_type}&resource={resource}"


def holders_url(resource_type: str, resource) -> str:
    return V1 + f"grants/holders/?resource_type={resource_type}&resource={resource}"


def test_a_manager_lists_the_grants_on_an_experiment(client, alice, experiment):
    response = signed_in(client, alice).get(grants_url("experiment", experiment.pk))

    assert response.status_code == 200
    [grant] = response.json()["results"]
    assert grant == {
        "id": grant["id"],
        "resource_type": "experiment",
        "resource": str(experiment.pk),
        "level": "MANAGE",
        "user": "alice",
        "team": None,
        "team_name": None,
    }


def test_a_superuser_lists_the_grants(client, root, experiment):
    assert signed_in(client, root).get(grants_url("experiment", experiment.pk)).status_code == 200


def test_a_reader_who_may_not_manage_gets_403(client, bob, experiment):
    # bob reads it through PORTAL_DEFAULT_PERMISSION=READ, which does not show who else has access.
    assert signed_in(client, bob).get(grants_url("experiment", experiment.pk)).status_code == 403


def test_an_outsider_of_a_private_experiment_gets_404(client, alice, charlie, experiment):
    experiment_set_private(actor=alice, experiment_id=str(experiment.pk), private=True)

    assert signed_in(client, charlie).get(grants_url("experiment", experiment.pk)).status_code == 404


def test_the_resource_is_required(client, alice):
    response = signed_in(client, alice).get(V1 + "grants/")

    assert response.status_code == 400
    assert set(response.json()) == {"resource_type", "resource"}


def test_an_unknown_resource_type_is_400(client, alice):
    assert signed_in(client, alice).get(grants_url("dataset", 1)).status_code == 400


def test_a_missing_experiment_is_404(client, root):
    assert signed_in(client, root).get(grants_url("experiment", 123456)).status_code == 404


def test_a_manager_grants_a_user_read(client, alice, bob, experiment):
    response = post(
        signed_in(client, alice),
        V1 + "grants/",
        {"resource_type": "experiment", "resource": str(experiment.pk), "user": "bob", "level": "READ"},
    )

    assert response.status_code == 201
    assert response.json()["user"] == "bob" and response.json()["level"] == "READ"
    assert [g.principal for g in permissions.grants_on(experiment)] == ["alice", "bob"]


def test_a_manager_grants_a_team(client, alice, team, experiment):
    response = post(
        signed_in(client, alice),
        V1 + "grants/",
        {"resource_type": "experiment", "resource": str(experiment.pk), "team": team.pk, "level": "EDIT"},
    )

    assert response.status_code == 201
    assert response.json()["team"] == team.pk
    assert response.json()["team_name"] == "ml"
    assert response.json()["user"] is None


def test_a_grant_goes_to_exactly_one_grantee(client, alice, bob, team, experiment):
    body = {"resource_type": "experiment", "resource": str(experiment.pk), "level": "READ"}
    signed_in(client, alice)

    assert post(client, V1 + "grants/", body).status_code == 400
    assert post(client, V1 + "grants/", body | {"user": "bob", "team": team.pk}).status_code == 400


def test_an_unknown_grantee_is_400(client, alice, experiment):
    body = {"resource_type": "experiment", "resource": str(experiment.pk), "user": "nobody", "level": "READ"}

    assert post(signed_in(client, alice), V1 + "grants/", body).status_code == 400


def test_an_unknown_level_is_400(client, alice, bob, experiment):
    body = {"resource_type": "experiment", "resource": str(experiment.pk), "user": "bob", "level": "OWNER"}

    assert post(signed_in(client, alice), V1 + "grants/", body).status_code == 400


def test_a_second_level_grant_is_409(client, alice, bob, experiment):
    body = {"resource_type": "experiment", "resource": str(experiment.pk), "user": "bob", "level": "READ"}
    signed_in(client, alice)
    post(client, V1 + "grants/", body)

    assert post(client, V1 + "grants/", body | {"level": "EDIT"}).status_code == 409


def test_a_reader_cannot_grant(client, bob, charlie, experiment):
    body = {"resource_type": "experiment", "resource": str(experiment.pk), "user": "charlie", "level": "READ"}

    assert post(signed_in(client, bob), V1 + "grants/", body).status_code == 403


def test_a_manager_grants_approve_on_a_registered_model(client, alice, bob, model):
    body = {"resource_type": "registered_model", "resource": "churn", "user": "bob", "level": "APPROVE"}

    response = post(signed_in(client, alice), V1 + "grants/", body)

    assert response.status_code == 201
    assert response.json()["resource"] == "churn"
    assert permissions.can(bob, permissions.APPROVE, model)


def test_approve_is_not_a_grant_on_experiments(client, alice, bob, experiment):
    body = {"resource_type": "experiment", "resource": str(experiment.pk), "user": "bob", "level": "APPROVE"}

    assert post(signed_in(client, alice), V1 + "grants/", body).status_code == 400


def test_a_manager_changes_a_grants_level(client, alice, bob, root, experiment):
    grant = permissions.grant_create(actor=root, root=experiment, level="READ", user=bob)

    response = patch(signed_in(client, alice), V1 + f"grants/{grant.id}/", {"level": "EDIT"})

    assert response.status_code == 200
    assert response.json()["level"] == "EDIT"
    assert response.json()["id"] == grant.id
    assert permissions.can(bob, permissions.EDIT, experiment)


def test_an_approve_grant_has_no_level_to_change(client, alice, bob, root, model):
    grant = permissions.grant_create(actor=root, root=model, level="APPROVE", user=bob)

    assert patch(signed_in(client, alice), V1 + f"grants/{grant.id}/", {"level": "EDIT"}).status_code == 400


def test_a_manager_reads_one_grant(client, alice, bob, root, experiment):
    grant = permissions.grant_create(actor=root, root=experiment, level="READ", user=bob)

    response = signed_in(client, alice).get(V1 + f"grants/{grant.id}/")

    assert response.status_code == 200
    assert response.json()["user"] == "bob"


def test_a_grant_on_a_hidden_object_is_404_and_names_nothing(client, alice, bob, charlie, root, model):
    registry_services.registered_model_set_private(actor=alice, name="churn", private=True)
    grant = permissions.grant_create(actor=root, root=model, level="READ", user=bob)

    response = signed_in(client, charlie).get(V1 + f"grants/{grant.id}/")

    assert response.status_code == 404
    assert "churn" not in response.content.decode()


def test_a_missing_grant_is_404(client, root):
    assert signed_in(client, root).get(V1 + "grants/999999/").status_code == 404


def test_a_manager_revokes_a_grant(client, alice, bob, root, experiment):
    grant = permissions.grant_create(actor=root, root=experiment, level="READ", user=bob)

    response = signed_in(client, alice).delete(V1 + f"grants/{grant.id}/")

    assert response.status_code == 204
    assert [g.principal for g in permissions.grants_on(experiment)] == ["alice"]


def test_revoking_an_approve_grant_keeps_the_level_grant(client, alice, bob, root, model):
    permissions.grant_create(actor=root, root=model, level="READ", user=bob)
    approve = permissions.grant_create(actor=root, root=model, level="APPROVE", user=bob)

    assert signed_in(client, alice).delete(V1 + f"grants/{approve.id}/").status_code == 204
    assert [(g.principal, g.level) for g in permissions.grants_on(model)] == [("alice", "MANAGE"), ("bob", "READ")]


def test_the_last_manage_grant_cannot_be_revoked(client, alice, experiment):
    [grant] = permissions.grants_on(experiment)

    response = signed_in(client, alice).delete(V1 + f"grants/{grant.id}/")

    assert response.status_code == 409
    assert permissions.grants_on(experiment)


def test_a_reader_cannot_revoke(client, bob, root, experiment):
    grant = permissions.grant_create(actor=root, root=experiment, level="READ", user=bob)

    assert signed_in(client, bob).delete(V1 + f"grants/{grant.id}/").status_code == 403


def test_grants_are_cursor_paginated(client, alice, bob, charlie, root, team, experiment):
    for user in (bob, charlie, root):
        permissions.grant_create(actor=root, root=experiment, level="READ", user=user)
    permissions.grant_create(actor=root, root=experiment, level="EDIT", team=team)
    signed_in(client, alice)

    first = client.get(grants_url("experiment", experiment.pk) + "&page_size=2").json()
    grants = all_pages(client, grants_url("experiment", experiment.pk) + "&page_size=2")

    assert len(first["results"]) == 2 and first["previous"] is None
    assert len(grants) == 5
    assert len({g["id"] for g in grants}) == 5
    second = client.get(first["next"]).json()
    back = client.get(second["previous"]).json()
    assert back["results"] == first["results"]


def test_a_forged_cursor_is_404(client, alice, experiment):
    response = signed_in(client, alice).get(grants_url("experiment", experiment.pk) + "&cursor=bm90IGpzb24")

    assert response.status_code == 404


# ---------------------------------------------------------------- who can see this


def test_a_manager_sees_who_can_see_an_experiment(client, alice, bob, root, team, experiment):
    permissions.grant_create(actor=root, root=experiment, level="EDIT", team=team)

    response = signed_in(client, alice).get(holders_url("experiment", experiment.pk))

    assert response.status_code == 200
    holders = {(h["kind"], h["name"]): h for h in response.json()["results"]}
    assert holders[("everyone", "signed-in users")]["level"] == "READ"
    assert holders[("team", "ml")]["level"] == "EDIT"
    assert holders[("user", "alice")] == {
        "kind": "user",
        "name": "alice",
        "level": "MANAGE",
        "approve": False,
        "sources": ["grant"],
    }
    assert holders[("user", "bob")]["level"] == "EDIT"
    assert holders[("user", "bob")]["sources"] == ["team:ml"]
    assert holders[("user", "root")]["sources"] == ["superuser"]


def test_holders_come_everyone_first_then_teams_then_users(client, alice, root, team, experiment):
    permissions.grant_create(actor=root, root=experiment, level="READ", team=team)

    holders = all_pages(signed_in(client, alice), holders_url("experiment", experiment.pk) + "&page_size=1")

    assert [(h["kind"], h["name"]) for h in holders] == [
        ("everyone", "signed-in users"),
        ("team", "ml"),
        ("user", "alice"),
        ("user", "bob"),
        ("user", "root"),
    ]


def test_a_reader_cannot_see_who_else_can(client, bob, experiment):
    assert signed_in(client, bob).get(holders_url("experiment", experiment.pk)).status_code == 403


def test_an_outsider_cannot_learn_a_private_models_holders(client, alice, charlie, model):
    registry_services.registered_model_set_private(actor=alice, name="churn", private=True)

    assert signed_in(client, charlie).get(holders_url("registered_model", "churn")).status_code == 404


def test_a_superuser_sees_a_models_holders(client, root, model):
    response = signed_in(client, root).get(holders_url("registered_model", "churn"))

    assert response.status_code == 200
    assert ("user", "alice") in {(h["kind"], h["name"]) for h in response.json()["results"]}


def test_a_manager_makes_an_experiment_private_and_an_editor_may_not(client, alice, bob, settings):
    from portal import permissions
    from tests.factories import make_experiment

    experiment = make_experiment(owner=alice, name="to-hide")
    permissions.grant_create(actor=alice, root=experiment, level="EDIT", user=bob)
    client.force_login(bob)
    assert client.post(f"/api/v1/experiments/{experiment.pk}/private/", {"private": True}, "application/json").status_code == 403
    client.force_login(alice)

    response = client.post(f"/api/v1/experiments/{experiment.pk}/private/", {"private": True}, "application/json")

    assert response.status_code == 200
    assert response.json()["private"] is True
    permissions.grant_revoke(actor=alice, root=experiment, user=bob)
    client.force_login(bob)
    assert client.get(f"/api/v1/experiments/{experiment.pk}/").status_code == 404


def test_a_manager_makes_a_registered_model_private(client, alice, charlie):
    from registry import services

    services.registered_model_create(actor=alice, name="quiet")
    client.force_login(alice)

    response = client.post("/api/v1/registered-models/quiet/private/", {"private": True}, "application/json")

    assert response.status_code == 200
    client.force_login(charlie)
    assert client.get("/api/v1/registered-models/quiet/").status_code == 404
