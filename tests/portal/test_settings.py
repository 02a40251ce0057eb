import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from portal.models import ApiToken
from portal.settings import env_bool


@pytest.mark.parametrize(("value", "expected"), [("True", True), ("False", False)])
def test_env_bool_accepts_true_and_false(monkeypatch, value, expected):
    monkeypatch.setenv("PORTAL_TEST_FLAG", value)

    assert env_bool("PORTAL_TEST_FLAG", default=not expected) is expected


@pytest.mark.parametrize("value", ["true", "false", "TRUE", "1", "0", "yes", "on", " True"])
def test_env_bool_rejects_anything_but_true_and_false(monkeypatch, value):
    monkeypatch.setenv("PORTAL_TEST_FLAG", value)

    with pytest.raises(ImproperlyConfigured, match="PORTAL_TEST_FLAG must be True or False"):
        env_bool("PORTAL_TEST_FLAG", default=False)


@pytest.mark.parametrize("value", [None, ""])
def test_env_bool_falls_back_to_the_default_when_unset_or_empty(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("PORTAL_TEST_FLAG", raising=False)
    else:
        monkeypatch.setenv("PORTAL_TEST_FLAG", value)

    assert env_bool("PORTAL_TEST_FLAG", default=True) is True


def manage(*args, env, tmp_path):
    """Run manage.py in a fresh interpreter with `env` on top of a clean environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_", "SECRET_KEY", "DEBUG"))}
    base.update({"PORTAL_VAR_DIR": str(tmp_path), "PYTHONWARNINGS": "ignore"}, **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_is_clean_with_production_settings(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "DEBUG",
        env={
            "DEBUG": "False",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "PORTAL_HTTPS": "True",
            "ALLOWED_HOSTS": "portal.example.com",
        },
        tmp_path=tmp_path,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_secret_key_is_required_with_a_shared_database(tmp_path):
    result = manage(
        "check", env={"SECRET_KEY": "", "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}, tmp_path=tmp_path
    )

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DATABASE_URL is set" in result.stderr


def test_a_request_for_a_foreign_host_gets_400(client, db):
    # DNS rebinding: evil.example resolves to the portal's address, but Host gives it away.
    response = client.get("/healthz", HTTP_HOST="evil.example")

    assert response.status_code == 400


def test_a_request_for_an_allowed_host_is_served(client, db):
    assert client.get("/healthz", HTTP_HOST="localhost").status_code == 200


def test_a_page_post_without_a_csrf_token_gets_403(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post("/accounts/tokens/", {"name": "laptop"})

    assert response.status_code == 403
    assert not ApiToken.objects.filter(user=alice).exists()


def test_a_page_post_with_the_csrf_token_is_accepted(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/accounts/tokens/")

    response = client.post(
        "/accounts/tokens/", {"name": "laptop", "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    )

    assert response.status_code == 200
    assert ApiToken.objects.filter(user=alice).exists()
