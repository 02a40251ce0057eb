"""HTTP Basic and the header-only rule on the MLflow door (tokens: test_api_tokens.py)."""

from unittest import mock

from django.contrib.auth import hashers

from portal.services import api_token_create
from tests.portal.helpers import API_URL, basic, bearer, fresh_password


def counting_check_password():
    """Patch the password hasher's entry point that ModelBackend reaches, counting calls."""
    return mock.patch("django.contrib.auth.base_user.check_password", wraps=hashers.check_password)


def test_basic_auth_works(client, alice, api_url):
    password = fresh_password(alice)

    response = client.get(api_url, **basic("alice", password))

    assert response.status_code == 200


def test_basic_auth_with_a_wrong_password_gets_401_with_www_authenticate(client, alice):
    fresh_password(alice)

    response = client.get(API_URL, **basic("alice", "not her password"))

    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert response["WWW-Authenticate"] == 'Basic realm="mlportal", charset="UTF-8"'


def test_basic_auth_for_an_unknown_user_gets_401(client, db):
    response = client.get(API_URL, **basic("mallory", "anything"))

    assert response.status_code == 401


def test_malformed_basic_credentials_get_401(client, db):
    response = client.get(API_URL, HTTP_AUTHORIZATION="Basic not-base64!")

    assert response.status_code == 401
    assert "Malformed" in response.json()["message"]


def test_an_unsupported_authorization_scheme_gets_401(client, db):
    response = client.get(API_URL, HTTP_AUTHORIZATION="Digest username=alice")

    assert response.status_code == 401


def test_cached_basic_verification_does_not_run_the_password_hasher_again(client, alice):
    password = fresh_password(alice)

    with counting_check_password() as check_password:
        for _ in range(3):
            assert client.get(API_URL, **basic("alice", password)).status_code != 401

    assert check_password.call_count == 1


def test_password_change_drops_the_cached_basic_verification(client, alice):
    old = fresh_password(alice)
    assert client.get(API_URL, **basic("alice", old)).status_code != 401

    new = fresh_password(alice)

    assert client.get(API_URL, **basic("alice", old)).status_code == 401
    assert client.get(API_URL, **basic("alice", new)).status_code != 401


def test_deactivation_drops_the_cached_basic_verification(client, alice):
    password = fresh_password(alice)
    assert client.get(API_URL, **basic("alice", password)).status_code != 401

    alice.is_active = False
    alice.save(update_fields=["is_active"])

    assert client.get(API_URL, **basic("alice", password)).status_code == 401


def test_reactivated_user_must_pass_the_password_check_again(client, alice):
    password = fresh_password(alice)
    client.get(API_URL, **basic("alice", password))
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    client.get(API_URL, **basic("alice", password))
    alice.is_active = True
    alice.save(update_fields=["is_active"])

    with counting_check_password() as check_password:
        assert client.get(API_URL, **basic("alice", password)).status_code != 401

    assert check_password.call_count == 1


def test_unauthenticated_api_call_gets_401_with_www_authenticate(client, db, api_url):
    response = client.get(api_url)

    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert response["WWW-Authenticate"].startswith("Basic ")


def test_session_cookie_is_ignored_on_mlflow_api_paths(client, alice, api_url):
    client.force_login(alice)

    response = client.get(api_url)

    assert response.status_code == 401


def test_session_cookie_is_ignored_on_ajax_api_paths(client, alice, api_url):
    client.force_login(alice)

    response = client.get("/ajax-api/2.0/mlflow/experiments/get?experiment_id=0")

    assert response.status_code == 401


def test_session_cookie_still_signs_in_on_pages(client, alice):
    client.force_login(alice)

    assert client.get("/accounts/tokens/").status_code == 200


def test_a_token_does_not_sign_in_on_pages(client, alice):
    # Tokens and Basic open the API doors only (test_hardening.py has the rest).
    raw = api_token_create(user=alice, name="script").raw

    response = client.get("/accounts/tokens/", **bearer(raw))

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
