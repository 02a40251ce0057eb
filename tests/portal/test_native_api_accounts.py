"""The native API's accounts: me, users, teams and API tokens, for each role."""

import pytest
from django.contrib.auth import get_user_model

from portal import services
from portal.models import ApiToken
from tests.native_api import V1, all_pages, patch, post, put, signed_in
from tests.portal.helpers import bearer

User = get_user_model()


@pytest.fixture
def team(root, alice, bob):
    """Team "ml": alice is its admin, bob a member."""
    team = services.team_create(actor=root, name="ml", description="Machine learning")
    services.team_admin_set(actor=root, team_id=team.pk, username="alice", is_admin=True)
    services.team_member_add(actor=root, team_id=team.pk, username="bob")
    return team


# ---------------------------------------------------------------- me


def test_me_shows_my_account_and_teams(client, alice, team, root):
    other = services.team_create(actor=root, name="analytics")
    services.team_member_add(actor=root, team_id=other.pk, username="alice")

    body = signed_in(client, alice).get(V1 + "me/").json()

    assert body == {
        "id": alice.pk,
        "username": "alice",
        "email": "alice@example.com",
        "first_name": "",
        "last_name": "",
        "is_superuser": False,
        "teams": [
            {"id": other.pk, "name": "analytics", "is_admin": False},
            {"id": team.pk, "name": "ml", "is_admin": True},
        ],
    }


def test_me_says_when_i_am_a_superuser(client, root):
    assert signed_in(client, root).get(V1 + "me/").json()["is_superuser"] is True


# ---------------------------------------------------------------- users


def test_any_signed_in_user_lists_users_without_others_emails(client, alice, bob, root):
    results = signed_in(client, bob).get(V1 + "users/").json()["results"]

    assert [u["username"] for u in results] == ["alice", "bob", "root"]
    assert {u["username"]: u["email"] for u in results} == {"alice": None, "bob": "bob@example.com", "root": None}


def test_a_superuser_sees_every_email(client, alice, root):
    results = signed_in(client, root).get(V1 + "users/").json()["results"]

    assert {u["username"]: u["email"] for u in results} == {"alice": "alice@example.com", "root": "root@example.com"}


def test_a_user_is_found_by_username(client, alice, bob):
    response = signed_in(client, bob).get(V1 + "users/alice/")

    assert response.status_code == 200
    assert response.json()["id"] == alice.pk


def test_an_unknown_user_is_404(client, alice):
    assert signed_in(client, alice).get(V1 + "users/nobody/").status_code == 404


def test_users_are_paginated_by_username(client, alice, bob, charlie, root):
    names = [u["username"] for u in all_pages(signed_in(client, alice), V1 + "users/?page_size=1")]

    assert names == ["alice", "bob", "charlie", "root"]


def test_an_ordinary_user_cannot_create_users(client, alice):
    response = post(signed_in(client, alice), V1 + "users/", {"username": "dave", "password": "a long passphrase 1"})

    assert response.status_code == 403
    assert not User.objects.filter(username="dave").exists()


def test_a_superuser_creates_a_user(client, root):
    response = post(
        signed_in(client, root),
        V1 + "users/",
        {"username": "dave", "password": "a long passphrase 1", "email": "dave@example.com"},
    )

    assert response.status_code == 201
    assert response.json()["username"] == "dave"
    assert "password" not in response.json()
    assert User.objects.get(username="dave").check_password("a long passphrase 1")


def test_creating_a_taken_username_is_409(client, root, alice):
    response = post(signed_in(client, root), V1 + "users/", {"username": "alice", "password": "a long passphrase 1"})

    assert response.status_code == 409


def test_a_weak_password_is_400(client, root):
    response = post(signed_in(client, root), V1 + "users/", {"username": "dave", "password": "123"})

    assert response.status_code == 400


def test_a_superuser_makes_a_user_an_administrator(client, root, alice):
    response = patch(signed_in(client, root), V1 + "users/alice/", {"is_superuser": True})

    assert response.status_code == 200
    assert response.json()["is_superuser"] is True
    alice.refresh_from_db()
    assert alice.is_superuser and alice.is_staff


def test_an_ordinary_user_cannot_make_themself_an_administrator(client, alice):
    response = patch(signed_in(client, alice), V1 + "users/alice/", {"is_superuser": True})

    assert response.status_code == 403
    alice.refresh_from_db()
    assert not alice.is_superuser


def test_put_is_not_offered_on_users(client, root, alice):
    assert put(signed_in(client, root), V1 + "users/alice/", {"is_superuser": True}).status_code == 405


def test_a_superuser_deletes_a_user(client, root, alice):
    response = signed_in(client, root).delete(V1 + "users/alice/")

    assert response.status_code == 204
    assert not User.objects.filter(username="alice").exists()


def test_an_ordinary_user_cannot_delete_users(client, alice, bob):
    assert signed_in(client, alice).delete(V1 + "users/bob/").status_code == 403
    assert User.objects.filter(username="bob").exists()


def test_a_user_changes_their_password_with_the_current_one(client, alice):
    from tests.conftest import PASSWORD

    response = post(
        signed_in(client, alice),
        V1 + "users/alice/password/",
        {"password": "a brand new passphrase", "current_password": PASSWORD},
    )

    assert response.status_code == 204
    alice.refresh_from_db()
    assert alice.check_password("a brand new passphrase")


def test_a_users_own_password_change_needs_the_current_one(client, alice):
    response = post(signed_in(client, alice), V1 + "users/alice/password/", {"password": "a brand new passphrase"})

    assert response.status_code == 400
    alice.refresh_from_db()
    assert not alice.check_password("a brand new passphrase")


def test_a_user_cannot_set_someone_elses_password(client, alice, bob):
    response = post(signed_in(client, alice), V1 + "users/bob/password/", {"password": "a brand new passphrase"})

    assert response.status_code == 403


def test_a_superuser_sets_someone_elses_password(client, root, alice):
    response = post(signed_in(client, root), V1 + "users/alice/password/", {"password": "a brand new passphrase"})

    assert response.status_code == 204
    alice.refresh_from_db()
    assert alice.check_password("a brand new passphrase")


# ---------------------------------------------------------------- teams


def test_any_signed_in_user_reads_a_team_with_its_members_and_admins(client, charlie, team):
    response = signed_in(client, charlie).get(V1 + f"teams/{team.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": team.pk,
        "name": "ml",
        "description": "Machine learning",
        "members": ["alice", "bob"],
        "admins": ["alice"],
        "defaults": [],
    }


def test_teams_are_listed_by_name(client, charlie, team, root):
    services.team_create(actor=root, name="analytics")

    results = signed_in(client, charlie).get(V1 + "teams/").json()["results"]

    assert [t["name"] for t in results] == ["analytics", "ml"]


def test_a_group_made_in_the_admin_is_listed_too(client, alice):
    from django.contrib.auth.models import Group

    Group.objects.create(name="legacy")

    results = signed_in(client, alice).get(V1 + "teams/").json()["results"]

    assert results[0]["name"] == "legacy"
    assert results[0]["description"] == "" and results[0]["admins"] == []


def test_an_unknown_team_is_404(client, alice):
    assert signed_in(client, alice).get(V1 + "teams/999/").status_code == 404


def test_a_superuser_creates_a_team(client, root):
    response = post(signed_in(client, root), V1 + "teams/", {"name": "vision", "description": "Images"})

    assert response.status_code == 201
    assert response.json()["name"] == "vision"
    assert response.json()["description"] == "Images"


def test_an_ordinary_user_cannot_create_a_team(client, alice):
    assert post(signed_in(client, alice), V1 + "teams/", {"name": "vision"}).status_code == 403


def test_a_superuser_renames_a_team(client, root, team):
    response = patch(signed_in(client, root), V1 + f"teams/{team.pk}/", {"name": "ml-platform"})

    assert response.status_code == 200
    assert response.json()["name"] == "ml-platform"
    assert response.json()["description"] == "Machine learning"


def test_a_team_admin_cannot_rename_the_team(client, alice, team):
    assert patch(signed_in(client, alice), V1 + f"teams/{team.pk}/", {"name": "mine"}).status_code == 403


def test_a_superuser_deletes_a_team(client, root, team):
    assert signed_in(client, root).delete(V1 + f"teams/{team.pk}/").status_code == 204
    assert signed_in(client, root).get(V1 + f"teams/{team.pk}/").status_code == 404


def test_a_team_admin_adds_a_member(client, alice, charlie, team):
    response = post(signed_in(client, alice), V1 + f"teams/{team.pk}/members/", {"username": "charlie"})

    assert response.status_code == 204
    assert team.user_set.filter(username="charlie").exists()


def test_a_plain_member_cannot_add_members(client, bob, charlie, team):
    response = post(signed_in(client, bob), V1 + f"teams/{team.pk}/members/", {"username": "charlie"})

    assert response.status_code == 403
    assert not team.user_set.filter(username="charlie").exists()


def test_adding_an_unknown_user_is_404(client, alice, team):
    assert post(signed_in(client, alice), V1 + f"teams/{team.pk}/members/", {"username": "nobody"}).status_code == 404


def test_a_team_admin_removes_a_member(client, alice, team):
    response = signed_in(client, alice).delete(V1 + f"teams/{team.pk}/members/bob/")

    assert response.status_code == 204
    assert not team.user_set.filter(username="bob").exists()


def test_removing_a_non_member_is_404(client, alice, charlie, team):
    assert signed_in(client, alice).delete(V1 + f"teams/{team.pk}/members/charlie/").status_code == 404


def test_a_superuser_makes_a_member_a_team_admin(client, root, team):
    response = post(signed_in(client, root), V1 + f"teams/{team.pk}/admins/", {"username": "bob"})

    assert response.status_code == 204
    assert signed_in(client, root).get(V1 + f"teams/{team.pk}/").json()["admins"] == ["alice", "bob"]


def test_a_team_admin_cannot_choose_team_admins(client, alice, team):
    assert post(signed_in(client, alice), V1 + f"teams/{team.pk}/admins/", {"username": "bob"}).status_code == 403


def test_a_superuser_takes_a_team_admin_role_away(client, root, team):
    response = signed_in(client, root).delete(V1 + f"teams/{team.pk}/admins/alice/")

    assert response.status_code == 204
    body = signed_in(client, root).get(V1 + f"teams/{team.pk}/").json()
    assert body["admins"] == [] and "alice" in body["members"]


def test_a_superuser_sets_and_removes_a_team_default(client, root, team):
    signed_in(client, root)

    response = put(client, V1 + f"teams/{team.pk}/defaults/experiment/", {"level": "EDIT"})

    assert response.status_code == 200
    assert response.json() == {"resource_type": "experiment", "level": "EDIT"}
    assert client.get(V1 + f"teams/{team.pk}/").json()["defaults"] == [{"resource_type": "experiment", "level": "EDIT"}]
    assert client.delete(V1 + f"teams/{team.pk}/defaults/experiment/").status_code == 204
    assert client.get(V1 + f"teams/{team.pk}/").json()["defaults"] == []


def test_a_team_admin_cannot_set_team_defaults(client, alice, team):
    response = put(signed_in(client, alice), V1 + f"teams/{team.pk}/defaults/experiment/", {"level": "EDIT"})

    assert response.status_code == 403


def test_an_unknown_level_is_400(client, root, team):
    response = put(signed_in(client, root), V1 + f"teams/{team.pk}/defaults/experiment/", {"level": "OWNER"})

    assert response.status_code == 400


def test_removing_a_missing_team_default_is_404(client, root, team):
    assert signed_in(client, root).delete(V1 + f"teams/{team.pk}/defaults/registered_model/").status_code == 404


# ---------------------------------------------------------------- tokens


def test_i_list_my_own_tokens_only_and_never_their_digests(client, alice, bob):
    services.api_token_create(user=alice, name="laptop")
    services.api_token_create(user=bob, name="bobs")

    results = signed_in(client, alice).get(V1 + "tokens/").json()["results"]

    assert [t["name"] for t in results] == ["laptop"]
    assert set(results[0]) == {"id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "is_active"}


def test_tokens_are_listed_newest_first(client, alice):
    for name in ("first", "second", "third"):
        services.api_token_create(user=alice, name=name)

    names = [t["name"] for t in all_pages(signed_in(client, alice), V1 + "tokens/?page_size=2")]

    assert names == ["third", "second", "first"]


def test_a_created_token_is_shown_once_and_works(client, alice):
    signed_in(client, alice)

    response = post(client, V1 + "tokens/", {"name": "laptop"})

    assert response.status_code == 201
    raw = response.json()["token"]
    assert raw.startswith(services.TOKEN_PREFIX)
    assert "token" not in client.get(V1 + f"tokens/{response.json()['id']}/").json()
    assert ApiToken.objects.get().digest == services.token_digest(raw)
    client.logout()
    assert client.get(V1 + "me/", **bearer(raw)).json()["username"] == "alice"


def test_a_token_needs_a_name(client, alice):
    assert post(signed_in(client, alice), V1 + "tokens/", {"name": ""}).status_code == 400


def test_i_revoke_my_token_and_it_stops_working(client, alice):
    created = services.api_token_create(user=alice, name="laptop")

    response = post(signed_in(client, alice), V1 + f"tokens/{created.token.pk}/revoke/")

    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    assert response.json()["is_active"] is False
    client.logout()
    assert client.get(V1 + "me/", **bearer(created.raw)).status_code == 401


def test_a_token_may_revoke_itself(client, alice):
    created = services.api_token_create(user=alice, name="leaked")

    response = post(client, V1 + f"tokens/{created.token.pk}/revoke/", **bearer(created.raw))

    assert response.status_code == 200


def test_someone_elses_token_is_404(client, alice, bob):
    created = services.api_token_create(user=bob, name="bobs")
    signed_in(client, alice)

    assert client.get(V1 + f"tokens/{created.token.pk}/").status_code == 404
    assert post(client, V1 + f"tokens/{created.token.pk}/revoke/").status_code == 404
    created.token.refresh_from_db()
    assert created.token.revoked_at is None


def test_changing_ones_own_password_in_a_session_keeps_that_session(client, db):
    from tests.conftest import make_user

    dora = make_user("dora")
    client.force_login(dora)

    response = client.post(
        "/api/v1/users/dora/password/",
        {"password": "a much longer new passphrase", "current_password": "correct horse battery staple"},
        "application/json",
    )

    assert response.status_code == 204
    assert client.get("/api/v1/me/").status_code == 200
