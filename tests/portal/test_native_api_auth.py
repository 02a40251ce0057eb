"""The native API's doors: token, Basic and session authentication (CSRF for session
writes), 401 for anonymous callers, and the routes.API rule that lets DRF decide."""

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.crypto import get_random_string

from portal import auth, routes
from portal.services import api_token_create, api_token_revoke
from tests.native_api import V1, post, signed_in
from tests.portal.helpers import basic, bearer, fresh_password

GUARDED_GETS = [
    "",
    "me/",
    "users/",
    "users/alice/",
    "teams/",
    "tokens/",
    "grants/?resource_type=experiment&resource=1",
    "grants/holders/?resource_type=experiment&resource=1",
    "experiments/",
    "experiments/1/",
    "runs/",
    "logged-models/",
    "registered-models/",
    "registered-models/churn/",
    "model-versions/",
    "model-versions/churn/1/",
    "schema/",
    "docs/",
]


@pytest.mark.parametrize("route", GUARDED_GETS)
def test_anonymous_caller_gets_401_with_a_challenge(client, alice, route):
    response = client.get(V1 + route)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_anonymous_write_gets_401(client, db):
    response = post(client, V1 + "teams/", {"name": "ml"})

    assert response.status_code == 401


def test_a_bearer_token_signs_in(client, alice):
    raw = api_token_create(user=alice, name="ci").raw

    response = client.get(V1 + "me/", **bearer(raw))

    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_http_basic_signs_in(client, alice):
    password = fresh_password(alice)

    response = client.get(V1 + "me/", **basic("alice", password))

    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_a_wrong_password_is_401(client, alice):
    response = client.get(V1 + "me/", **basic("alice", "not the password"))

    assert response.status_code == 401


def test_a_revoked_token_is_401(client, alice):
    created = api_token_create(user=alice, name="ci")
    api_token_revoke(user=alice, token_id=created.token.pk)

    response = client.get(V1 + "me/", **bearer(created.raw))

    assert response.status_code == 401
    assert "WWW-Authenticate" in response


def test_a_session_signs_in(client, alice):
    response = signed_in(client, alice).get(V1 + "me/")

    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_the_header_is_authenticated_once_per_request(client, alice, monkeypatch):
    raw = api_token_create(user=alice, name="ci").raw
    calls = []
    real = auth.api_token_authenticate
    monkeypatch.setattr(auth, "api_token_authenticate", lambda token: calls.append(token) or real(token))

    client.get(V1 + "me/", **bearer(raw))

    assert calls == [raw]


def test_a_session_write_without_a_csrf_token_is_refused(alice):
    client = signed_in(Client(enforce_csrf_checks=True), alice)

    response = post(client, V1 + "tokens/", {"name": "laptop"})

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not alice.api_tokens.exists()


def test_a_session_write_with_the_csrf_token_succeeds(alice):
    client = signed_in(Client(enforce_csrf_checks=True), alice)
    secret = get_random_string(32)
    client.cookies["csrftoken"] = secret

    response = post(client, V1 + "tokens/", {"name": "laptop"}, HTTP_X_CSRFTOKEN=secret)

    assert response.status_code == 201


def test_a_header_write_needs_no_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    password = fresh_password(alice)

    response = post(client, V1 + "tokens/", {"name": "laptop"}, **basic("alice", password))

    assert response.status_code == 201


def test_a_token_cannot_create_tokens(client, alice):
    raw = api_token_create(user=alice, name="ci").raw

    response = post(client, V1 + "tokens/", {"name": "another"}, **bearer(raw))

    assert response.status_code == 403
    assert alice.api_tokens.count() == 1


def test_a_token_does_not_sign_in_on_pages(client, alice):
    raw = api_token_create(user=alice, name="ci").raw

    response = client.get("/accounts/tokens/", **bearer(raw))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_an_inactive_users_session_is_401(client, alice):
    signed_in(client, alice)
    alice.is_active = False
    alice.save(update_fields=["is_active"])

    assert client.get(V1 + "me/").status_code == 401


# ---------------------------------------------------------------- the API route rule


def _native_api_views():
    def walk(patterns, prefix=""):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern):
                yield route, entry.callback

    return [(route, view) for route, view in walk(get_resolver().url_patterns) if route.startswith("api/v1/")]


def test_every_native_api_route_leaves_the_decision_to_drf():
    views = _native_api_views()

    assert len(views) > 20
    assert {route: routes.rule_for(view) for route, view in views} == {route: routes.API for route, _ in views}


def test_a_plain_django_view_cannot_declare_the_api_rule():
    @routes.route_rule(routes.API)
    def page(request):
        raise AssertionError("never reached")

    assert routes.rule_for(page) is None


def test_a_viewset_action_carries_its_viewsets_rule():
    from portal.api_views import TeamViewSet

    view = TeamViewSet.as_view({"delete": "member_remove"})

    assert routes.rule_for(view) == routes.API


def test_an_anonymous_caller_gets_a_bearer_challenge_that_browsers_do_not_prompt_for(client, db):
    response = client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer ")


def test_a_form_post_with_basic_credentials_is_refused_before_any_view_acts(client, root):
    from tests.portal.helpers import basic, fresh_password

    password = fresh_password(root)
    response = client.post(
        "/api/v1/teams/",
        data="name=evil",
        content_type="application/x-www-form-urlencoded",
        **basic("root", password),
    )

    assert response.status_code == 415
    from django.contrib.auth.models import Group

    assert not Group.objects.filter(name="evil").exists()
