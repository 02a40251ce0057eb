"""A webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread, which checks each
delivery the way a receiver written for MLflow does (MLflow's documented recipe: HMAC-SHA256
over "<delivery id>.<timestamp>.<raw body>", base64, "v1," prefix, constant-time compare,
timestamp no older than five minutes) and records what it got.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def verify_mlflow_signature(payload: str, signature: str, secret: str, delivery_id: str, timestamp: str) -> bool:
    if not signature or not signature.startswith("v1,"):
        return False
    signed_content = f"{delivery_id}.{timestamp}.{payload}"
    expected = hmac.new(secret.encode("utf-8"), signed_content.encode("utf-8"), hashlib.sha256).digest()
    return hmac.compare_digest(signature.removeprefix("v1,"), base64.b64encode(expected).decode("utf-8"))


def verify_timestamp_freshness(timestamp: str, max_age: int = 300) -> bool:
    try:
        return abs(int(time.time()) - int(timestamp)) <= max_age
    except ValueError:
        return False


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """Answers each POST with the next of `statuses` (the last one repeats), 200 by default.
    A status of 3xx comes with a Location header pointing back at the receiver."""

    def __init__(self, secret: str = "", statuses: list[int] | None = None, delay: float = 0.0):
        self.secret = secret
        self.statuses = list(statuses or [200])
        self.delay = delay
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {key: value for key, value in self.headers.items()}
                payload = body.decode("utf-8")
                verified = verify_mlflow_signature(
                    payload,
                    self.headers.get("X-MLflow-Signature", ""),
                    receiver.secret,
                    self.headers.get("X-MLflow-Delivery-Id", ""),
                    self.headers.get("X-MLflow-Timestamp", ""),
                ) and verify_timestamp_freshness(self.headers.get("X-MLflow-Timestamp", ""))
                receiver.received.append(Received(self.path, headers, body, verified))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                if receiver.secret and not verified:
                    status = 401
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"{receiver.url}/elsewhere")
                answer = json.dumps({"received": True}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- fixtures (import them into a test module)

SECRET = "s3cr3t-for-tests"


@pytest.fixture
def webhook_settings(settings, eager_tasks):
    """Deliveries may go to 127.0.0.1 (the receiver), retries do not wait, and deliveries are
    made in-process (also on the leg with a broker: no worker listens to it here)."""
    settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.PORTAL_WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.PORTAL_WEBHOOK_MAX_ATTEMPTS = 5
    settings.PORTAL_WEBHOOK_CONNECT_TIMEOUT = 2
    settings.PORTAL_WEBHOOK_READ_TIMEOUT = 5
    return settings


@pytest.fixture
def receiver():
    found = Receiver(secret=SECRET)
    yield found
    found.close()
