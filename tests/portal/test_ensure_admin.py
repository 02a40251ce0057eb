import io
import re

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command


def ensure_admin() -> str:
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def no_superuser_env(monkeypatch):
    for name in ("DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SUPERUSER_EMAIL"):
        monkeypatch.delenv(name, raising=False)


def test_it_creates_admin_with_a_generated_password_printed_once(db):
    output = ensure_admin()

    password = re.search(r"Created superuser 'admin' with password: (\S+)", output).group(1)
    user = authenticate(username="admin", password=password)
    assert user is not None and user.is_superuser and user.is_staff


def test_it_takes_the_account_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long chosen password")

    output = ensure_admin()

    assert "a long chosen password" not in output
    assert authenticate(username="ops", password="a long chosen password").is_superuser


def test_it_does_nothing_when_a_superuser_exists(root):
    output = ensure_admin()

    assert "nothing to do" in output
    assert get_user_model().objects.count() == 1


def test_it_runs_twice_without_a_second_admin(db):
    ensure_admin()
    second = ensure_admin()

    assert "nothing to do" in second
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


def test_it_refuses_to_promote_an_existing_ordinary_user(db):
    get_user_model().objects.create_user(username="admin", password="x")

    with pytest.raises(CommandError, match="exists but is not a superuser"):
        ensure_admin()
    assert not get_user_model().objects.filter(is_superuser=True).exists()
