"""Real Celery workers, and row locks held on purpose, for the tests of the apply task on the
PostgreSQL + Redis leg (tests/registry/test_apply_worker.py, test_apply_races.py).

`CeleryWorker` runs `celery -A portal worker` in a subprocess against pytest-django's test
database (test_<name>), with the broker of the settings. Each test gets a Redis key prefix of
its own (kombu's `global_keyprefix`), given to the test process's Celery app (`use_broker`)
and to its workers, so the queues, unacknowledged messages and bindings of one test never
reach another test, nor another test run sharing the Redis server; `redis_delete_prefix`
removes them afterwards. Worker connections carry an application_name, so a test can see
them waiting on a lock in pg_stat_activity, and clean up after a worker it killed.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection
from psycopg import sql

from portal.celery import app

REDIS_SCHEMES = ("redis", "rediss")


def why_no_workers() -> str | None:
    """Why the worker tests cannot run here (None: they can)."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "needs PostgreSQL (DATABASE_URL): a worker process and the test share the test database"
    broker = settings.CELERY_BROKER_URL
    if not broker:
        return "needs a broker (REDIS_URL): without one Celery runs tasks eagerly and there is no worker"
    if urllib.parse.urlsplit(broker).scheme not in REDIS_SCHEMES:
        return "isolates each test's queues with a Redis key prefix: needs a Redis broker"
    return None


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1,
               on_timeout: Callable[[], str] | None = None):
    """Poll `predicate` until it returns something true (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = on_timeout() if on_timeout is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{detail}")
        time.sleep(interval)


# ---------------------------------------------------------------- the test process's broker


def new_key_prefix() -> str:
    return f"mlportal-test-{uuid.uuid4().hex[:16]}:"


@contextmanager
def use_broker(url: str, *, transport_options: dict | None = None, eager: bool = False) -> Iterator[None]:
    """Send this process's tasks to `url` with `transport_options` (eager: run them in-process),
    restoring the app's broker configuration and connection pools afterwards."""
    conf = app.conf
    keys = ("broker_url", "broker_read_url", "broker_write_url", "broker_transport_options", "task_always_eager")
    saved = {key: conf.get(key) for key in keys}
    # Celery prefers these variables to its configuration: they would win over `url`.
    saved_env = {name: os.environ.pop(name) for name in
                 ("CELERY_BROKER_URL", "CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL") if name in os.environ}
    _drop_broker_pools()
    # Items, not attributes: the Settings' broker_url and friends are read-only properties.
    conf["broker_url"] = url
    conf["broker_read_url"] = None
    conf["broker_write_url"] = None
    conf["broker_transport_options"] = dict(transport_options or {})
    conf["task_always_eager"] = eager
    try:
        yield
    finally:
        _drop_broker_pools()
        for key, value in saved.items():
            conf[key] = value
        os.environ.update(saved_env)


def _drop_broker_pools() -> None:
    # The app keeps one connection pool and one producer pool, made from the configuration
    # in force when first used; the next task sent after this gets pools for the new one.
    # (Not closed: kombu shares a pool between equal connections, and would hand the closed
    # one back the next time the same broker is configured.)
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


def isolated_transport_options(key_prefix: str, **extra) -> dict:
    """The settings' transport options, with every Redis key of the broker under `key_prefix`."""
    return {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": key_prefix, **extra}


def redis_delete_prefix(key_prefix: str) -> int:
    """Delete every key under `key_prefix` on the settings' broker (queues, unacked, bindings)."""
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        keys = list(client.scan_iter(match=f"{key_prefix}*", count=500))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


# ---------------------------------------------------------------- the test database, seen from outside


def database_url_for_test(application_name: str) -> str:
    """DATABASE_URL of the settings, pointed at the test database this test runs on."""
    parts = urllib.parse.urlsplit(settings.DATABASE_URL)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["application_name"] = application_name
    name = urllib.parse.quote(connection.settings_dict["NAME"])
    return parts._replace(path=f"/{name}", query=urllib.parse.urlencode(query)).geturl()


def raw_connection(application_name: str = "mlportal-test") -> psycopg.Connection:
    """A psycopg connection to the test database of its own, outside Django."""
    return psycopg.connect(database_url_for_test(application_name), autocommit=True)


def backends_of(application_name: str, *, waiting_on_lock: bool = False) -> list[int]:
    """Server pids of the connections named `application_name` (only those waiting for a lock)."""
    query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
    if waiting_on_lock:
        query += " AND wait_event_type = 'Lock'"
    with raw_connection() as conn:
        return [row[0] for row in conn.execute(query, [application_name]).fetchall()]


def tables_written_by(application_name: str) -> set[str]:
    """Tables that connections named `application_name` wrote in their open transactions
    (INSERT, UPDATE and DELETE hold ROW EXCLUSIVE on the table until the end; SELECT FOR
    UPDATE takes ROW SHARE)."""
    query = (
        "SELECT DISTINCT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.datname = current_database() "
        "AND a.application_name = %s AND l.mode = 'RowExclusiveLock' AND c.relkind IN ('r', 'p')"
    )
    with raw_connection() as conn:
        return {row[0] for row in conn.execute(query, [application_name]).fetchall()}


def waiting_on_lock(application_name: str | None = None) -> int:
    """How many connections to the test database (named `application_name`, or any) wait for a lock."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    params = []
    if application_name is not None:
        query += " AND application_name = %s"
        params.append(application_name)
    with raw_connection() as conn:
        return conn.execute(query, params).fetchone()[0]


def terminate_backends(application_name: str) -> None:
    with raw_connection() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [application_name],
        )


class RowLock:
    """A row locked FOR UPDATE by a transaction of its own, until `release()`: whoever else
    locks it (a worker, a thread) waits, visibly, in pg_stat_activity."""

    def __init__(self, model, pk: int):
        self.conn = raw_connection("mlportal-test-lock")
        self.conn.autocommit = False
        table = sql.Identifier(model._meta.db_table)
        found = self.conn.execute(sql.SQL("SELECT id FROM {} WHERE id = %s FOR UPDATE").format(table), [pk]).fetchone()
        assert found is not None, f"no {model.__name__} {pk} to lock"

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()

    def __enter__(self) -> "RowLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# ---------------------------------------------------------------- a worker


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it if the test process dies first, so an
    interrupted run leaves no worker behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class CeleryWorker:
    """`celery -A portal worker` against the test database and the settings' broker, keys
    under `key_prefix`. `pool` "solo" runs tasks in the worker's own process; "prefork" (one
    child) in a child the worker watches. `extra_transport_options` override the settings'."""

    def __init__(self, *, key_prefix: str, log_dir: Path, pool: str = "solo", beat: bool = False,
                 env: dict[str, str] | None = None, extra_transport_options: dict | None = None):
        self.name = f"w{uuid.uuid4().hex[:10]}"
        self.application_name = f"mlportal-test-{self.name}"
        self.log_path = log_dir / f"{self.name}.log"
        transport_options = isolated_transport_options(key_prefix, **(extra_transport_options or {}))
        command = [
            sys.executable, "-m", "celery", "-A", "portal", "worker",
            f"--pool={pool}", "--concurrency=1", "-n", f"{self.name}@%h", "--loglevel=INFO",
            # Nothing to learn from other workers, and nothing to wait for at start.
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        if beat:
            command += ["--beat", "--schedule-filename", str(log_dir / f"{self.name}-beat-schedule")]
        # Celery reads `key=value` after `--` as configuration, over the settings'.
        command += ["--", f"broker.transport_options=(json){json.dumps(transport_options)}"]
        child_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CELERY_BROKER")},
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database_url_for_test(self.application_name),
            "SECRET_KEY": settings.SECRET_KEY,
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PORTAL_VAR_DIR": str(log_dir / "var"),
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self._log = open(self.log_path, "wb")  # closed in stop()
        self.process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=child_env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> "CeleryWorker":
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited with {self.process.returncode}:\n{self.log()}")
            return re.search(rf"\b{self.name}@\S+ ready\.", self.log())

        wait_until(ready, timeout=timeout, what=f"worker {self.name} to be ready", on_timeout=self.log)
        return self

    def pool_children(self) -> list[int]:
        """Pids of the worker's pool processes (prefork), from /proc."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def kill(self) -> None:
        """SIGKILL the worker and everything it started: no chance to acknowledge or restore."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the worker (SIGTERM, a warm shutdown; SIGKILL if it takes too long), then end
        any connection it left to the test database (a killed worker's backend may still be
        waiting for a lock), so the database can be flushed and dropped."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        terminate_backends(self.application_name)
