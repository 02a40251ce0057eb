"""The servers under test, their databases, their memory, and the machine.

Every server runs in its own process group on 127.0.0.1 so that stopping it takes its
workers with it. Nothing is left behind: processes are stopped and PostgreSQL databases
dropped by the callbacks registered on the caller's ExitStack, which runs them on errors
and on Ctrl-C too.
"""

import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
STARTUP_TIMEOUT = 120  # seconds

# Variables that would point a server somewhere else than this run's fresh stores.
_FOREIGN_ENV_PREFIXES = ("MLFLOW_", "DJANGO_", "AWS_", "PORTAL_")
_FOREIGN_ENV = {"DATABASE_URL", "SECRET_KEY", "REDIS_URL", "CELERY_BROKER_URL", "ARTIFACT_ROOT", "DEBUG", "ALLOWED_HOSTS"}


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV and not k.startswith(_FOREIGN_ENV_PREFIXES)}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- PostgreSQL


def _pg_admin():
    import psycopg

    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True, connect_timeout=10)


def pg_create_database(stack: ExitStack, name: str) -> None:
    """A fresh database `name`, dropped when the stack closes."""
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    stack.callback(pg_drop_database, name)


def pg_drop_database(name: str) -> None:
    try:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as exc:  # cleanup must go on
        log(f"could not drop database {name}: {exc}")


def pg_version() -> str:
    try:
        with _pg_admin() as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:
        return f"unavailable ({exc.__class__.__name__})"


# ---------------------------------------------------------------- processes


class Process:
    """A server started in its own process group; stop() ends the whole group."""

    def __init__(self, name: str, cmd: list[str], *, cwd: Path, env: dict, log_file: Path):
        self.name = name
        self.cmd = cmd
        self.log_file = log_file
        self._log = open(log_file, "ab")
        self.popen = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout=wait)
                # The group may outlive its leader for a moment: make sure it is gone.
                deadline = time.monotonic() + wait
                while _group_alive(self.pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if not _group_alive(self.pid):
                    break
            except subprocess.TimeoutExpired:
                continue
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def wait_until_up(process: Process, url: str, headers: dict | None = None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited during startup:\n{process.tail()}")
        try:
            if requests.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{process.name} did not answer {url} within {STARTUP_TIMEOUT} s:\n{process.tail()}")


# ---------------------------------------------------------------- the portal


@dataclass
class Portal:
    url: str
    process: Process
    env: dict
    username: str
    password: str
    token: str
    config: str


_MAKE_TOKEN = """
from django.contrib.auth import get_user_model
from portal.services import api_token_create
user = get_user_model().objects.get(username={username!r})
print(api_token_create(user=user, name="benchmark").raw)
"""


def portal_env(workdir: Path, database_url: str | None) -> dict:
    env = clean_env(
        PORTAL_VAR_DIR=str(workdir),
        ARTIFACT_ROOT=str(workdir / "artifacts"),
        SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_SETTINGS_MODULE="portal.settings",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def start_portal(stack: ExitStack, workdir: Path, database_url: str | None, *, workers: int, threads: int) -> Portal:
    """Migrate a fresh database, create a superuser and a token, serve with gunicorn."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = portal_env(workdir, database_url)
    manage = [sys.executable, str(REPO / "manage.py")]
    username, password = "bench", secrets.token_urlsafe(24)

    def run(args: list[str], extra_env: dict | None = None) -> str:
        done = subprocess.run(
            [*manage, *args], cwd=REPO, env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return done.stdout

    run(["migrate", "--noinput", "-v0"])
    run(
        ["createsuperuser", "--noinput"],
        {"DJANGO_SUPERUSER_USERNAME": username, "DJANGO_SUPERUSER_PASSWORD": password, "DJANGO_SUPERUSER_EMAIL": "bench@example.com"},
    )
    token = run(["shell", "-c", _MAKE_TOKEN.format(username=username)]).strip().splitlines()[-1]
    url, process, config = serve_portal(stack, workdir, env, workers=workers, threads=threads)
    return Portal(url, process, env, username, password, token, config=config)


def serve_portal(stack: ExitStack, workdir: Path, env: dict, *, workers: int, threads: int, name: str = "gunicorn"):
    """gunicorn serving the portal on a free port of 127.0.0.1 with `env` (a migrated
    database); stopped when the stack closes. (url, Process, its command line)."""
    port = free_port()
    args = ["-b", f"127.0.0.1:{port}", "-k", "gthread", "-w", str(workers), "--threads", str(threads), "--timeout", "300"]
    cmd = [str(VENV_BIN / "gunicorn"), "portal.wsgi:application", *args, "--log-level", "warning"]
    process = Process(f"portal ({name})", cmd, cwd=REPO, env=env, log_file=workdir / f"{name}.log")
    stack.callback(process.stop)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(process, f"{url}/healthz")
    return url, process, "gunicorn portal.wsgi:application " + " ".join(args)


# ---------------------------------------------------------------- MLflow


@dataclass
class Mlflow:
    url: str
    process: Process
    backend_uri: str
    config: str
    username: str = ""
    password: str = ""


def start_mlflow(stack: ExitStack, workdir: Path, backend_uri: str, artifacts_dir: Path, *, basic_auth: bool = False) -> Mlflow:
    """`mlflow server` with its default settings (uvicorn, 4 workers), artifacts proxied.

    With basic_auth, the basic-auth app with its packaged basic_auth.ini: the auth database
    lands in workdir (the ini's relative sqlite:///basic_auth.db), and the admin password
    and the Flask secret key it insists on come from the environment.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        "--backend-store-uri", backend_uri,
        "--artifacts-destination", str(artifacts_dir),
        "--serve-artifacts",
        "--host", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    env = clean_env(PYTHONUNBUFFERED="1")
    username = password = ""
    if basic_auth:
        args += ["--app-name", "basic-auth"]
        username, password = "admin", "Bench-" + secrets.token_urlsafe(16)
        env.update(MLFLOW_AUTH_ADMIN_PASSWORD=password, MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_urlsafe(32))
    cmd = [str(VENV_BIN / "mlflow"), "server", *args]
    name = "mlflow server (basic-auth)" if basic_auth else "mlflow server"
    process = Process(name, cmd, cwd=workdir, env=env, log_file=workdir / "mlflow.log")
    stack.callback(process.stop)
    return Mlflow(f"http://127.0.0.1:{port}", process, backend_uri, "mlflow server " + " ".join(args), username, password)


def wait_mlflow(server: Mlflow) -> None:
    headers = None
    if server.username:
        headers = {"Authorization": requests.auth._basic_auth_str(server.username, server.password)}
    wait_until_up(server.process, f"{server.url}/health", headers)


# ---------------------------------------------------------------- memory


def _children(pid: int) -> list[int]:
    result = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    result += [int(c) for c in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return result


def process_tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += _children(pid)
    return pids


def _status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class TreeMemory:
    """Memory of one server's process tree, in MB."""

    name: str
    root: int
    pids: list[int] = field(default_factory=list)
    current: float = 0.0
    peak: float = 0.0
    samples: int = 0
    hwm: float = 0.0  # recorded before the server stops, when it stops early

    def sample(self) -> float:
        self.current = sum(_status_kb(pid, "VmRSS") for pid in self.pids) / 1024
        self.peak = max(self.peak, self.current)
        self.samples += 1
        return self.current

    def refresh_tree(self) -> None:
        self.pids = process_tree(self.root)

    def max_hwm(self) -> float:
        """The largest peak RSS (VmHWM) any single process of the tree reached."""
        return max((_status_kb(pid, "VmHWM") for pid in process_tree(self.root)), default=0) / 1024


class MemorySampler:
    """Samples the RSS of each server's process tree (sum of VmRSS from /proc/<pid>/status)
    every `interval` seconds in a daemon thread; window() reports the peak inside a block."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.trees: dict[str, TreeMemory] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._windows: list[dict] = []
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def watch(self, name: str, root_pid: int) -> TreeMemory:
        tree = TreeMemory(name, root_pid)
        tree.refresh_tree()
        tree.sample()
        with self._lock:
            self.trees[name] = tree
        return tree

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        last_refresh = 0.0
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            with self._lock:
                for tree in self.trees.values():
                    if now - last_refresh > 1.0:
                        tree.refresh_tree()
                    value = tree.sample()
                    for window in self._windows:
                        if window["name"] == tree.name:
                            window["peak"] = max(window["peak"], value)
                if now - last_refresh > 1.0:
                    last_refresh = now

    def window_start(self, name: str) -> dict:
        with self._lock:
            tree = self.trees[name]
            tree.refresh_tree()
            baseline = tree.sample()
            window = {"name": name, "baseline": baseline, "peak": baseline}
            self._windows.append(window)
        return window

    def window_end(self, window: dict) -> float:
        """Growth over the baseline, in MB, seen while the window was open."""
        with self._lock:
            window["peak"] = max(window["peak"], self.trees[window["name"]].sample())
            self._windows.remove(window)
        return window["peak"] - window["baseline"]


# ---------------------------------------------------------------- the machine


def machine_info() -> dict:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = next((line.split(":", 1)[1].strip() for line in read("/proc/cpuinfo").splitlines() if line.startswith("model name")), platform.processor())
    mem_kb = next((int(line.split()[1]) for line in read("/proc/meminfo").splitlines() if line.startswith("MemTotal")), 0)

    def version(module: str) -> str:
        try:
            from importlib.metadata import version as v

            return v(module)
        except Exception:
            return "?"

    import sqlite3

    return {
        "CPU": cpu,
        "Cores": str(os.cpu_count()),
        "RAM": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Django": version("django"),
        "gunicorn": version("gunicorn"),
        "mlflow": version("mlflow"),
        "uvicorn": version("uvicorn"),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": pg_version(),
    }


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"
