"""The native API's OpenAPI 3 schema (/api/v1/schema/) and its docs page (/api/v1/docs/),
served from local static files."""

import json
import re
from html.parser import HTMLParser

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from tests.native_api import V1, signed_in


def _native_api_paths() -> set[str]:
    """Every /api/v1/ route of the URL configuration, spelled as OpenAPI paths."""

    def walk(patterns, prefix=""):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern):
                yield route

    paths = set()
    for route in walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/"):
            continue
        route = route.replace("^", "").replace("$", "")
        route = re.sub(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)", r"{\1}", route)  # regex groups
        route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)  # path converters
        paths.add("/" + route.replace("{pk}", "{id}"))
    return paths - {"/api/v1/", "/api/v1/schema/", "/api/v1/docs/"}


@pytest.fixture
def schema(client, alice):
    response = signed_in(client, alice).get(V1 + "schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)


def test_the_schema_has_every_route(schema):
    expected = _native_api_paths()

    assert len(expected) > 20
    assert expected - set(schema["paths"]) == set()


def test_the_schema_comes_as_json_too(client, alice):
    response = signed_in(client, alice).get(V1 + "schema/?format=json")

    assert response.status_code == 200
    assert json.loads(response.content)["info"]["title"] == "mlportal API"


def test_the_schema_names_all_three_ways_to_sign_in(schema):
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "basicAuth", "cookieAuth"}


def test_lists_are_documented_as_cursor_pages(schema):
    parameters = {p["name"] for p in schema["paths"]["/api/v1/runs/"]["get"]["parameters"]}

    assert {"cursor", "page_size", "experiment", "view_type"} <= parameters


def test_the_schema_generates_without_warnings():
    GENERATOR_STATS.reset()

    SchemaGenerator().get_schema(request=None, public=True)

    assert not GENERATOR_STATS, "drf-spectacular warned; see the captured output"


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_the_docs_page_loads_its_assets_from_this_server(client, alice):
    response = signed_in(client, alice).get(V1 + "docs/")

    assert response.status_code == 200
    parser = _Assets()
    parser.feed(response.content.decode())
    assert parser.urls
    assert all(url.startswith("/static/") for url in parser.urls), parser.urls
    assert "//" not in "".join(url.removeprefix("/static/") for url in parser.urls)
    assert "/api/v1/schema/" in response.content.decode()


def test_the_docs_pages_assets_are_static_files():
    for name in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert finders.find(f"drf_spectacular_sidecar/swagger-ui-dist/{name}"), name


def test_a_live_server_serves_the_docs_pages_assets(live_server, alice):
    import requests

    from tests.portal.helpers import fresh_password

    password = fresh_password(alice)
    session = requests.Session()
    session.auth = ("alice", password)
    page = session.get(live_server.url + V1 + "docs/", timeout=30)
    parser = _Assets()
    parser.feed(page.text)

    assert page.status_code == 200
    for url in parser.urls:
        assert session.get(live_server.url + url, timeout=30).status_code == 200, url


def test_the_api_root_links_every_resource(client, alice):
    response = signed_in(client, alice).get(V1)

    assert response.status_code == 200
    assert set(response.json()) == {
        "me",
        "schema",
        "docs",
        "users",
        "teams",
        "tokens",
        "grants",
        "audit-events",
        "webhooks",
        "experiments",
        "runs",
        "logged-models",
        "registered-models",
        "model-versions",
        "transition-requests",
    }
    assert response.json()["runs"] == "http://testserver/api/v1/runs/"
