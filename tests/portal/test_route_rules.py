"""Deny by default: every route declares an access rule, and the middleware enforces it."""

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import override_settings
from django.urls import get_resolver, path

from portal import routes, views
from tests.portal.helpers import bearer
from tests.portal.matrix import walk


def test_the_walk_sees_the_whole_url_configuration():
    found = {route for route, _, _ in walk(get_resolver().url_patterns)}

    assert "accounts/tokens/" in found
    assert any(route.startswith("admin/") for route in found)


def test_every_route_declares_an_access_rule():
    missing = [
        f"/{route} -> {view.__module__}.{getattr(view, '__qualname__', view)} (namespace {namespace!r})"
        for route, view, namespace in walk(get_resolver().url_patterns)
        if routes.rule_for(view, namespace) is None
    ]

    assert not missing, "routes without an access rule:\n" + "\n".join(missing)


def test_admin_routes_get_the_admin_site_rule():
    admin_views = [(view, ns) for route, view, ns in walk(get_resolver().url_patterns) if route.startswith("admin/")]

    assert admin_views
    assert {routes.rule_for(view, ns) for view, ns in admin_views} == {routes.ADMIN_SITE}


def test_an_unknown_rule_is_refused_at_declaration():
    with pytest.raises(ValueError):
        routes.route_rule("everyone")


# A tiny URL configuration for the runtime tests below (ROOT_URLCONF points at this module).


def view_without_rule(request):
    return HttpResponse("reached")


@routes.route_rule(routes.STAFF)
def staff_view(request):
    return HttpResponse("reached")


@routes.route_rule(routes.AUTHENTICATED)
def authenticated_view(request):
    return HttpResponse("reached")


urlpatterns = [
    path("accounts/login/", views.login_view, name="login"),
    path("no-rule", view_without_rule),
    path("staff", staff_view),
    path("api/2.0/mlflow/staff", staff_view),
    path("signed-in", authenticated_view),
]

this_urlconf = override_settings(ROOT_URLCONF=__name__)


@this_urlconf
def test_a_view_without_a_rule_is_refused_at_runtime(client, root):
    client.force_login(root)

    response = client.get("/no-rule")

    assert response.status_code == 403
    assert b"reached" not in response.content


@this_urlconf
def test_staff_route_refuses_a_signed_in_non_staff_user(client, alice):
    client.force_login(alice)

    response = client.get("/staff")

    assert response.status_code == 403
    assert b"reached" not in response.content


@this_urlconf
def test_staff_route_admits_staff(client, db):
    staff = get_user_model().objects.create_user(username="sam", password="x", is_staff=True)
    client.force_login(staff)

    assert client.get("/staff").content == b"reached"


@this_urlconf
def test_staff_api_route_refuses_a_non_staff_token(client, alice):
    from portal.services import api_token_create

    raw = api_token_create(user=alice, name="t").raw

    assert client.get("/api/2.0/mlflow/staff", **bearer(raw)).status_code == 403


@this_urlconf
def test_anonymous_visitor_of_a_guarded_page_is_sent_to_log_in_and_back(client, db):
    response = client.get("/signed-in?tab=runs&page=2")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/signed-in%3Ftab%3Druns%26page%3D2"


@this_urlconf
def test_anonymous_caller_of_a_guarded_api_route_gets_401(client, db):
    response = client.get("/api/2.0/mlflow/staff")

    assert response.status_code == 401
    assert "WWW-Authenticate" in response
