"""Many clients at once: version numbers stay distinct and consecutive, a name is created once.

Three setups:
- the live test portal, whose request threads each have their own database connection
  (tests/conftest.py keeps the SQLite test database in a file for that reason; the variant
  is skipped if someone runs it on an in-memory database, where Django shares one
  connection between all server threads);
- a real portal in subprocesses (gunicorn, several workers with several threads) on a
  database of its own, of the kind the suite runs on: PostgreSQL when DATABASE_URL names
  it (CI's second leg), otherwise a SQLite file. SQLite takes one writer at a time, so
  only PostgreSQL really races two creates of one name;
- the services, with the existence check made to miss, so that the unique constraint is
  what refuses the second create, on every database.
"""

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from portal.errors import AlreadyExists
from registry import selectors, services
from registry.models import RegisteredModel
from tests.registry.conftest import upload
from tests.tracking.helpers import exists_check_misses

THREADS = 8
PER_THREAD = 4


def register_at_once(url: str, token: str, body: dict, *, path="model-versions/create") -> list[requests.Response]:
    """THREADS clients each sending PER_THREAD requests, all released at the same moment."""
    barrier = threading.Barrier(THREADS)
    responses: list[requests.Response] = []
    lock = threading.Lock()

    def client():
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        barrier.wait()
        for _ in range(PER_THREAD):
            response = session.post(f"{url}/api/2.0/mlflow/{path}", json=body, timeout=120)
            with lock:
                responses.append(response)

    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def assert_numbers_are_distinct_and_consecutive(responses: list[requests.Response]) -> None:
    errors = [(r.status_code, r.text[:200]) for r in responses if r.status_code != 200]
    assert not errors
    numbers = sorted(int(r.json()["model_version"]["version"]) for r in responses)
    assert numbers == list(range(1, THREADS * PER_THREAD + 1))


def test_versions_registered_at_once_through_the_live_portal_get_distinct_consecutive_numbers(
    portal, alice, experiment, run
):
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("the in-memory SQLite test database shares one connection between server threads")
    upload(alice, run, "model/MLmodel")
    services.registered_model_create(actor=alice, name="churn")

    responses = register_at_once(
        portal.url, portal.token_for(alice), {"name": "churn", "source": f"runs:/{run.pk}/model", "run_id": run.pk}
    )

    assert_numbers_are_distinct_and_consecutive(responses)
    assert selectors.registered_model_get_for_user(alice, "churn").last_version_number == THREADS * PER_THREAD


# ---------------------------------------------------------------- a real portal on a database of its own


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_MAKE_USER = """
from django.contrib.auth import get_user_model
from portal.services import api_token_create
user = get_user_model().objects.create_user("alice", password="unused-password-123")
print(api_token_create(user=user, name="race").raw)
"""


@pytest.fixture(scope="module")
def own_database_url():
    """The DATABASE_URL of a new, empty database on the PostgreSQL server the suite runs on,
    dropped afterwards; None on SQLite, where the portal makes its own file."""
    url = os.environ.get("DATABASE_URL")
    if connection.vendor != "postgresql" or not url:
        yield None
        return
    import psycopg
    from psycopg import sql

    parts = urllib.parse.urlsplit(url)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # each xdist worker gets its own
    name = f"{parts.path.lstrip('/')}_race_{worker}"[-63:]
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as server:
        server.execute(drop)
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield parts._replace(path=f"/{name}").geturl()
        finally:
            server.execute(drop)


@pytest.fixture(scope="module")
def subprocess_portal(tmp_path_factory, own_database_url):
    """A portal in gunicorn (3 workers x 4 threads) on a database of its own, and alice's token."""
    base = Path(settings.BASE_DIR)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "SECRET_KEY", "REDIS_URL", "ARTIFACT_ROOT", "AWS_STORAGE_BUCKET_NAME")
        and not k.startswith("MLFLOW_")
    }
    env["PORTAL_VAR_DIR"] = str(tmp_path_factory.mktemp("subprocess-portal"))
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    if own_database_url:
        env["DATABASE_URL"] = own_database_url
        env["SECRET_KEY"] = secrets.token_urlsafe(32)
    manage = [sys.executable, str(base / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=base, env=env, check=True)
    made = subprocess.run(
        [*manage, "shell", "-c", _MAKE_USER], cwd=base, env=env, check=True, capture_output=True, text=True
    )
    token = made.stdout.strip().splitlines()[-1]
    port = _free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [str(gunicorn), "portal.wsgi", "-b", f"127.0.0.1:{port}", "-w", "3", "--threads", "4"]
        + ["--log-level", "warning"],
        cwd=base,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the gunicorn portal did not start")
            time.sleep(0.2)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            # Clients still holding keep-alive connections can outlast the graceful stop.
            server.kill()
            server.wait()


def _api(url: str, token: str):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def call(method: str, path: str, **kwargs):
        response = session.request(method, f"{url}{path}", timeout=60, **kwargs)
        assert response.status_code == 200, response.text
        return response.json() if response.content else {}

    return call


def test_versions_registered_at_once_on_a_multi_process_portal_get_distinct_consecutive_numbers(subprocess_portal):
    url, token = subprocess_portal
    api = _api(url, token)
    experiment_id = api("POST", "/api/2.0/mlflow/experiments/create", json={"name": "race"})["experiment_id"]
    run = api("POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id})["run"]["info"]
    root = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    api("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{root}/model/MLmodel", data=b"flavors: {}\n")
    api("POST", "/api/2.0/mlflow/registered-models/create", json={"name": "churn"})

    responses = register_at_once(
        url, token, {"name": "churn", "source": f"runs:/{run['run_id']}/model", "run_id": run["run_id"]}
    )

    assert_numbers_are_distinct_and_consecutive(responses)


@pytest.mark.parametrize("path", ["registered-models/create", "experiments/create"])
def test_a_name_created_by_many_clients_at_once_exists_once(subprocess_portal, path):
    url, token = subprocess_portal

    responses = register_at_once(url, token, {"name": "contested"}, path=path)

    assert sorted(r.status_code for r in responses).count(200) == 1
    refused = [r.json()["error_code"] for r in responses if r.status_code != 200]
    assert refused == ["RESOURCE_ALREADY_EXISTS"] * (THREADS * PER_THREAD - 1)


# ---------------------------------------------------------------- the unique constraint decides


@pytest.mark.django_db
def test_a_model_name_taken_after_the_exists_check_is_refused_by_the_unique_constraint(alice, bob, monkeypatch):
    services.registered_model_create(actor=alice, name="churn")
    missed = exists_check_misses(monkeypatch, RegisteredModel)

    with pytest.raises(AlreadyExists, match=r"Registered Model \(name=churn\) already exists"):
        services.registered_model_create(actor=bob, name="churn")

    assert missed  # the service did check first, and the check missed
    # The failed INSERT ran in a savepoint: the surrounding transaction is still usable (PostgreSQL).
    assert list(RegisteredModel.objects.filter(name="churn").values_list("owner__username", flat=True)) == ["alice"]
