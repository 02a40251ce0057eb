"""Helpers for the native API (/api/v1/) tests."""

import json

V1 = "/api/v1/"


def signed_in(client, user):
    """`client` with a session for `user` (the test client skips CSRF unless asked not to)."""
    client.force_login(user)
    return client


def post(client, url: str, data=None, **extra):
    return client.post(url, json.dumps(data or {}), content_type="application/json", **extra)


def patch(client, url: str, data=None, **extra):
    return client.patch(url, json.dumps(data or {}), content_type="application/json", **extra)


def put(client, url: str, data=None, **extra):
    return client.put(url, json.dumps(data or {}), content_type="application/json", **extra)


def all_pages(client, url: str, **extra) -> list:
    """Every result of a cursor-paginated list, following `next` links; fails on a repeat."""
    seen: list = []
    pages = 0
    while url:
        response = client.get(url, **extra)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += body["results"]
        url = body["next"]
        pages += 1
        assert pages < 100, "the next links never end"
    return seen
