import hashlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.models import ApiToken
from portal.services import LAST_USED_RESOLUTION, api_token_create, api_token_revoke
from tests.portal.helpers import API_URL, bearer

TOKENS_URL = "/accounts/tokens/"


def raw_token_on(page) -> str:
    match = re.search(r'id="new-token">([^<]+)<', page.content.decode())
    assert match, "the page shows no new token"
    return match.group(1)


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def test_creating_a_token_shows_the_raw_token_once(alice_client):
    created = alice_client.post(TOKENS_URL, {"name": "laptop"})
    assert created.status_code == 200
    raw = raw_token_on(created)
    assert raw.startswith("mlp_")

    listed = alice_client.get(TOKENS_URL)
    assert listed.status_code == 200
    assert "laptop" in listed.content.decode()
    assert raw not in listed.content.decode()


def test_only_the_sha256_digest_of_a_token_is_stored(alice_client, alice):
    raw = raw_token_on(alice_client.post(TOKENS_URL, {"name": "laptop"}))

    token = ApiToken.objects.get(user=alice)
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert all(raw not in str(value) for value in stored.values())


def test_token_list_shows_own_tokens_only(alice_client, bob):
    api_token_create(user=bob, name="bobs-secret-laptop")

    page = alice_client.get(TOKENS_URL).content.decode()

    assert "bobs-secret-laptop" not in page
    assert "No tokens yet." in page


def test_a_token_needs_a_name(alice_client, alice):
    response = alice_client.post(TOKENS_URL, {"name": "   "})

    assert response.status_code == 200
    assert "A token needs a name." in response.content.decode()
    assert not ApiToken.objects.filter(user=alice).exists()


def test_token_page_requires_login(client, db):
    response = client.get(TOKENS_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_revoking_a_token_on_the_page_revokes_it(alice_client, alice):
    created = api_token_create(user=alice, name="laptop")

    response = alice_client.post(f"/accounts/tokens/{created.token.pk}/revoke")

    assert response.status_code == 302
    created.token.refresh_from_db()
    assert created.token.revoked_at is not None
    assert "revoked" in alice_client.get(TOKENS_URL).content.decode()


def test_user_cannot_revoke_someone_elses_token(alice_client, bob):
    bobs = api_token_create(user=bob, name="laptop")

    response = alice_client.post(f"/accounts/tokens/{bobs.token.pk}/revoke", follow=True)

    assert "does not exist" in response.content.decode()
    bobs.token.refresh_from_db()
    assert bobs.token.revoked_at is None


def test_revoking_twice_keeps_the_first_revocation_time(alice):
    created = api_token_create(user=alice, name="laptop")
    first = api_token_revoke(user=alice, token_id=created.token.pk).revoked_at

    again = api_token_revoke(user=alice, token_id=created.token.pk)

    assert again.revoked_at == first


def test_token_authenticates_api_requests(client, alice, api_url):
    raw = api_token_create(user=alice, name="laptop").raw

    response = client.get(api_url, **bearer(raw))

    assert response.status_code == 200


def test_revoked_token_is_refused(client, alice):
    created = api_token_create(user=alice, name="laptop")
    api_token_revoke(user=alice, token_id=created.token.pk)

    response = client.get(API_URL, **bearer(created.raw))

    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert response["WWW-Authenticate"].startswith("Basic ")


def test_unknown_token_is_refused(client, db):
    response = client.get(API_URL, **bearer("mlp_not-a-token"))

    assert response.status_code == 401


def test_token_of_a_deactivated_user_is_refused(client, alice):
    raw = api_token_create(user=alice, name="laptop").raw
    alice.is_active = False
    alice.save()

    response = client.get(API_URL, **bearer(raw))

    assert response.status_code == 401


def test_first_use_sets_last_used_at(client, alice):
    created = api_token_create(user=alice, name="laptop")
    assert created.token.last_used_at is None

    client.get(API_URL, **bearer(created.raw))

    created.token.refresh_from_db()
    assert created.token.last_used_at is not None


def test_last_used_at_is_not_rewritten_on_every_request(client, alice):
    created = api_token_create(user=alice, name="laptop")
    client.get(API_URL, **bearer(created.raw))
    created.token.refresh_from_db()
    first_use = created.token.last_used_at

    with CaptureQueriesContext(connection) as queries:
        client.get(API_URL, **bearer(created.raw))

    created.token.refresh_from_db()
    assert created.token.last_used_at == first_use
    assert not [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]


def test_last_used_at_is_refreshed_once_it_is_old(client, alice):
    created = api_token_create(user=alice, name="laptop")
    long_ago = timezone.now() - LAST_USED_RESOLUTION - timedelta(seconds=5)
    ApiToken.objects.filter(pk=created.token.pk).update(last_used_at=long_ago)

    client.get(API_URL, **bearer(created.raw))

    created.token.refresh_from_db()
    assert created.token.last_used_at > long_ago
