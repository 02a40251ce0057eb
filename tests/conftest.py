"""Shared fixtures: a fixed cast of users and the real mlflow client against a live portal.

alice owns things, bob is a second ordinary user, charlie is the outsider, root is a
superuser. `mlflow_client` starts the portal on a loopback port (pytest-django's
live_server) and points the unmodified mlflow client at it with alice's API token.
"""

import os

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from portal.services import api_token_create

# The password hasher is deliberately slow in production; tests do not need that.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On the embedded default, test in a SQLite file rather than in memory.

    Django shares one in-memory connection between the live server's request threads, so
    two requests at once (the mlflow client uploads in parallel) would interleave on one
    connection. A file gives each thread its own connection, as in production.
    """
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")


@pytest.fixture(autouse=True)
def _artifact_root(tmp_path, settings):
    """Each test gets its own artifact root, so files never leak between tests."""
    root = tmp_path / "artifacts"
    root.mkdir()
    settings.MEDIA_ROOT = root
    storages = dict(settings.STORAGES)
    storages["artifacts"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": root, "base_url": None},
    }
    settings.STORAGES = storages
    from django.core.files.storage import storages as storage_handler

    storage_handler._storages = {}
    storage_handler._backends = None
    yield root
    storage_handler._storages = {}
    storage_handler._backends = None


def make_user(username: str, **extra):
    return get_user_model().objects.create_user(
        username=username, password=PASSWORD, email=f"{username}@example.com", **extra
    )


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def charlie(db):
    return make_user("charlie")


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser(username="root", password=PASSWORD, email="root@example.com")


@pytest.fixture
def default_experiment(db):
    """The Default experiment, recreated after transactional tests flushed the database."""
    from tracking.models import Experiment

    experiment, _ = Experiment.objects.get_or_create(
        pk=0,
        defaults={"name": "Default", "artifact_location": "mlflow-artifacts:/0", "creation_time": 0, "last_update_time": 0},
    )
    return experiment


class Portal:
    """A live portal and helpers to act as one of the cast through the real mlflow client."""

    def __init__(self, url: str, monkeypatch):
        self.url = url
        self._monkeypatch = monkeypatch
        self.tokens: dict[str, str] = {}

    def token_for(self, user) -> str:
        if user.username not in self.tokens:
            self.tokens[user.username] = api_token_create(user=user, name="tests").raw
        return self.tokens[user.username]

    def act_as(self, user, *, basic: bool = False) -> None:
        """Point the mlflow client's credentials at `user` (a token, or username/password)."""
        for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            self._monkeypatch.delenv(name, raising=False)
        if user is None:
            return
        if basic:
            self._monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user.username)
            self._monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
        else:
            self._monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", self.token_for(user))

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)

    def session(self, user=None):
        """A requests session that talks to the portal as `user` (raw HTTP tests)."""
        import requests

        s = requests.Session()
        if user is not None:
            s.headers["Authorization"] = f"Bearer {self.token_for(user)}"
        return s


@pytest.fixture
def portal(live_server, monkeypatch, alice, default_experiment):
    """The live portal with the mlflow client acting as alice."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", live_server.url)
    mlflow.set_tracking_uri(live_server.url)
    mlflow.set_registry_uri(live_server.url)
    p = Portal(live_server.url, monkeypatch)
    p.act_as(alice)
    yield p
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None) if hasattr(mlflow, "set_tracking_uri") else None


@pytest.fixture
def client_as(portal):
    """client_as(user) -> an MlflowClient acting as user (token auth)."""

    def make(user, *, basic: bool = False):
        portal.act_as(user, basic=basic)
        return portal.client()

    return make


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in-process for this test, also on the PostgreSQL + Redis leg (where
    they otherwise go to a broker no worker of this test listens to). The worker path has
    its own tests (tests/registry/test_apply_worker.py)."""
    from portal.celery import app

    # Read first: Celery loads its configuration from Django's settings on first use, and
    # loaded under an override it would keep the override for the rest of the run.
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before
