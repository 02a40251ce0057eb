"""HTTP calls shaped like the mlflow client's, over keep-alive or fresh connections.

The mlflow client keeps one requests.Session per process (keep-alive); a fresh connection
per request is what many short scripts, CI jobs and notebooks restarting amount to. Every
call has a timeout, and every timing covers the whole response body.
"""

import json
import time
from dataclasses import dataclass, field

import requests

USER_AGENT = "mlflow-python-client/3.17.2"
TIMEOUT = 300  # seconds; large artifacts and MLflow's slow searches stay well below


@dataclass(frozen=True)
class Target:
    """One server as one user sees it: its URL and the Authorization header sent."""

    name: str  # portal_token, portal_basic, mlflow, mlflow_auth
    label: str
    url: str
    headers: dict = field(default_factory=dict)
    server: str = ""  # "portal" or "mlflow": which process tree serves it


class ApiError(Exception):
    def __init__(self, method: str, path: str, status: int, text: str):
        self.status = status
        super().__init__(f"{method} {path} -> {status}: {text[:300]}")


class Client:
    """MLflow REST calls against one target; keepalive=False opens a new connection per call."""

    def __init__(self, target: Target, keepalive: bool):
        self.target = target
        self.keepalive = keepalive
        self.headers = {"User-Agent": USER_AGENT, **target.headers}
        self.session = requests.Session() if keepalive else None

    def close(self) -> None:
        if self.session is not None:
            self.session.close()

    def _send(self, method: str, path: str, *, data=None, params=None, headers=None, stream=False):
        kwargs = {"data": data, "params": params, "headers": {**self.headers, **(headers or {})}, "timeout": TIMEOUT}
        url = self.target.url + path
        if self.session is not None:
            return self.session.request(method, url, stream=stream, **kwargs)
        if stream:
            # A one-off session that the caller closes with the response.
            session = requests.Session()
            response = session.request(method, url, stream=True, **kwargs)
            response._bench_session = session
            return response
        return requests.request(method, url, **kwargs)

    def timed(self, method: str, path: str, *, body: bytes | dict | None = None, params=None) -> tuple[float, dict]:
        """One JSON call: (seconds until the whole body arrived, parsed JSON). Raises ApiError."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else None
        start = time.perf_counter()
        response = self._send(method, path, data=data, params=params, headers=headers)
        content = response.content
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise ApiError(method, path, response.status_code, content.decode(errors="replace"))
        return elapsed, (json.loads(content) if content else {})

    def call(self, method: str, path: str, *, body: bytes | dict | None = None, params=None) -> dict:
        return self.timed(method, path, body=body, params=params)[1]

    def upload(self, path: str, file_name: str) -> float:
        """PUT a file the way HttpArtifactRepository.log_artifact does (an open file as body)."""
        start = time.perf_counter()
        with open(file_name, "rb") as f:
            response = self._send("PUT", path, data=f)
            content = response.content
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise ApiError("PUT", path, response.status_code, content.decode(errors="replace"))
        return elapsed

    def download(self, path: str, chunk_size: int = 1024 * 1024) -> tuple[float, int]:
        """GET a file streamed in chunks, as the client's download does; (seconds, bytes)."""
        start = time.perf_counter()
        response = self._send("GET", path, stream=True)
        size = 0
        try:
            if response.status_code != 200:
                raise ApiError("GET", path, response.status_code, response.text)
            for chunk in response.iter_content(chunk_size=chunk_size):
                size += len(chunk)
        finally:
            response.close()
            session = getattr(response, "_bench_session", None)
            if session is not None:
                session.close()
        return time.perf_counter() - start, size


# ---------------------------------------------------------------- a few calls used everywhere

API = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def create_experiment(client: Client, name: str) -> str:
    return client.call("POST", f"{API}/experiments/create", body={"name": name, "tags": []})["experiment_id"]


def create_run(client: Client, experiment_id: str, i: int) -> dict:
    from data import create_run_body

    return client.call("POST", f"{API}/runs/create", body=create_run_body(experiment_id, i))["run"]["info"]


def artifact_root(run_info: dict) -> str:
    """<experiment>/<run>/artifacts, the path under the artifact proxy."""
    uri = run_info["artifact_uri"]
    if not uri.startswith("mlflow-artifacts:/"):
        raise RuntimeError(f"unexpected artifact URI {uri!r}: the artifact proxy is not in use")
    return uri.removeprefix("mlflow-artifacts:").lstrip("/")
