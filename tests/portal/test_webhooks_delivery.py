"""Webhook deliveries: MLflow's wire format and signature checked by a real receiver on
127.0.0.1, retries with backoff, skipped deliveries, and the SSRF rules."""

import json
import os
import re
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from portal import tasks, webhooks
from portal.errors import InvalidParameter
from portal.models import WebhookDelivery
from portal.webhooks import http, services
from tests.portal.webhook_receiver import SECRET, Receiver

pytestmark = pytest.mark.django_db

DATA = {
    "name": "churn",
    "version": "3",
    "source": "models:/m-1",
    "run_id": None,
    "tags": {"team": "risk"},
    "description": None,
}


@pytest.fixture(autouse=True)
def _settings(webhook_settings):
    return webhook_settings


def hook(root, url, **extra):
    fields = {"name": "hook", "url": url, "events": ["model_version.created"], "secret": SECRET}
    return services.webhook_create(actor=root, **{**fields, **extra})


def emit_and_deliver(capture, event="model_version.created", data=DATA):
    """Emit in a transaction, then run what its commit queues (the delivery task, eagerly)."""
    with capture(execute=True):
        with transaction.atomic():
            webhooks.emit(event, data)


def resolving_to(monkeypatch, *addresses):
    monkeypatch.setattr(http, "resolve", lambda host, port: list(addresses))


# ---------------------------------------------------------------- the wire format


def test_a_delivery_reaches_the_receiver_signed_as_mlflow_signs(root, receiver, django_capture_on_commit_callbacks):
    hook(root, receiver.url)

    emit_and_deliver(django_capture_on_commit_callbacks)

    [got] = receiver.received
    delivery = WebhookDelivery.objects.get()
    assert got.verified, "the receiver's MLflow signature check failed"
    assert got.path == "/hook"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-MLflow-Delivery-Id"] == delivery.delivery_id
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]+=*", got.headers["X-MLflow-Signature"])
    assert got.json["data"] == DATA
    assert got.body.decode() == delivery.payload
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("succeeded", 1, 200)
    assert delivery.completed_at is not None and delivery.duration_ms is not None
    assert [entry["response_status"] for entry in delivery.attempt_log] == [200]


def test_the_signature_is_mlflows_own():
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = services.payload_json("model_version.created", DATA)

    assert services.signature(SECRET, "d-1", "1700000000", body) == _generate_hmac_signature(
        SECRET, "d-1", "1700000000", body
    )


def test_the_body_and_headers_have_mlflows_shape(monkeypatch, receiver):
    """MLflow's own sender, pointed at the same receiver, sends the same keys in the same
    order, the same timestamp format and the same headers."""
    from mlflow.entities.webhook import Webhook, WebhookEvent
    from mlflow.webhooks.delivery import _create_webhook_session, _send_webhook_request

    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    monkeypatch.setenv("MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES", "0")
    event = WebhookEvent("model_version", "created")
    entity = Webhook("w", "hook", receiver.url, [event], 0, 0, secret=SECRET)
    _send_webhook_request(entity, DATA, event, _create_webhook_session())
    body = services.payload_json("model_version.created", DATA)
    ours = services.delivery_headers("d-1", body, SECRET)

    theirs = receiver.received[0]
    assert theirs.verified
    assert list(json.loads(body)) == list(theirs.json)
    assert body.replace(json.loads(body)["timestamp"], "T") == theirs.body.decode().replace(
        theirs.json["timestamp"], "T"
    )
    timestamp_format = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00"
    assert re.fullmatch(timestamp_format, json.loads(body)["timestamp"])
    assert re.fullmatch(timestamp_format, theirs.json["timestamp"])
    mlflow_headers = {"Content-Type", "X-MLflow-Delivery-Id", "X-MLflow-Timestamp", "X-MLflow-Signature"}
    assert set(ours) == mlflow_headers and mlflow_headers <= set(theirs.headers)


def test_without_a_secret_no_signature_is_sent(root, django_capture_on_commit_callbacks):
    unsigned = Receiver()
    try:
        hook(root, unsigned.url, secret="")
        emit_and_deliver(django_capture_on_commit_callbacks)
    finally:
        unsigned.close()

    [got] = unsigned.received
    assert "X-MLflow-Signature" not in got.headers
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_a_wrong_secret_fails_the_receivers_check(root, receiver, django_capture_on_commit_callbacks):
    hook(root, receiver.url, secret="not the receiver's")

    emit_and_deliver(django_capture_on_commit_callbacks)

    assert not receiver.received[0].verified
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_status) == ("failed", 401)


# ---------------------------------------------------------------- disabled, deleted, rolled back


def test_a_webhook_disabled_before_its_delivery_is_sent_gets_nothing(
    root,
    receiver,
    django_capture_on_commit_callbacks,
):
    webhook = hook(root, receiver.url)
    with django_capture_on_commit_callbacks() as queued:
        webhooks.emit("model_version.created", DATA)
    services.webhook_update(actor=root, webhook_id=webhook.webhook_id, status="DISABLED")

    for callback in queued:
        callback()

    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("skipped", 0)
    assert "disabled" in delivery.error


def test_a_webhook_deleted_before_its_delivery_is_sent_gets_nothing(
    root,
    receiver,
    django_capture_on_commit_callbacks,
):
    webhook = hook(root, receiver.url)
    with django_capture_on_commit_callbacks() as queued:
        webhooks.emit("model_version.created", DATA)
    services.webhook_delete(actor=root, webhook_id=webhook.webhook_id)

    for callback in queued:
        callback()

    assert receiver.received == []
    assert WebhookDelivery.objects.get().status == "skipped"


def test_a_disabled_webhook_is_not_even_recorded(root, receiver, django_capture_on_commit_callbacks):
    hook(root, receiver.url, status="DISABLED")

    emit_and_deliver(django_capture_on_commit_callbacks)

    assert receiver.received == [] and not WebhookDelivery.objects.exists()


def test_a_retry_after_disabling_is_skipped(root, django_capture_on_commit_callbacks, settings):
    settings.PORTAL_WEBHOOK_RETRY_BASE_SECONDS = 30
    failing = Receiver(secret=SECRET, statuses=[503])
    try:
        webhook = hook(root, failing.url)
        emit_and_deliver(django_capture_on_commit_callbacks)
        services.webhook_update(actor=root, webhook_id=webhook.webhook_id, status="DISABLED")
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
        tasks.webhook_deliver(WebhookDelivery.objects.get().pk)
    finally:
        failing.close()

    assert len(failing.received) == 1
    assert WebhookDelivery.objects.get().status == "skipped"


@pytest.mark.django_db(transaction=True)
def test_nothing_is_delivered_for_a_rolled_back_change(root, receiver):
    hook(root, receiver.url)

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            webhooks.emit("model_version.created", DATA)
            raise RuntimeError("the change failed")
    with transaction.atomic():
        webhooks.emit("model_version.created", {**DATA, "version": "4"})

    assert [got.json["data"]["version"] for got in receiver.received] == ["4"]
    assert WebhookDelivery.objects.count() == 1


# ---------------------------------------------------------------- retries


def test_a_failed_delivery_is_retried_and_every_attempt_recorded(root, django_capture_on_commit_callbacks):
    flaky = Receiver(secret=SECRET, statuses=[500, 503, 200])
    try:
        hook(root, flaky.url)
        emit_and_deliver(django_capture_on_commit_callbacks)
    finally:
        flaky.close()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.error) == ("succeeded", 3, 200, "")
    assert [entry["response_status"] for entry in delivery.attempt_log] == [500, 503, 200]
    assert [entry["attempt"] for entry in delivery.attempt_log] == [1, 2, 3]
    # Retries send the same delivery id and the same bytes, freshly signed.
    assert len({got.headers["X-MLflow-Delivery-Id"] for got in flaky.received}) == 1
    assert len({got.body for got in flaky.received}) == 1
    assert all(got.verified for got in flaky.received)


def test_retries_stop_after_the_last_attempt(root, django_capture_on_commit_callbacks, settings):
    settings.PORTAL_WEBHOOK_MAX_ATTEMPTS = 3
    down = Receiver(secret=SECRET, statuses=[502])
    try:
        hook(root, down.url)
        emit_and_deliver(django_capture_on_commit_callbacks)
    finally:
        down.close()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 3, 502)
    assert len(down.received) == 3 and delivery.completed_at is not None


def test_a_client_error_is_not_retried(root, django_capture_on_commit_callbacks):
    refusing = Receiver(secret=SECRET, statuses=[404])
    try:
        hook(root, refusing.url)
        emit_and_deliver(django_capture_on_commit_callbacks)
    finally:
        refusing.close()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 1, 404)


def test_the_backoff_doubles(settings):
    settings.PORTAL_WEBHOOK_RETRY_BASE_SECONDS = 30

    assert [services.retry_delay(n) for n in (1, 2, 3, 4)] == [30.0, 60.0, 120.0, 240.0]


def test_without_a_worker_a_retry_waits_for_the_sweep_and_does_not_block(
    root, django_capture_on_commit_callbacks, settings
):
    settings.PORTAL_WEBHOOK_RETRY_BASE_SECONDS = 30
    flaky = Receiver(secret=SECRET, statuses=[503, 200])
    try:
        hook(root, flaky.url)
        started = time.monotonic()
        emit_and_deliver(django_capture_on_commit_callbacks)
        assert time.monotonic() - started < 10

        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        # 30 s after the attempt ended (which took delivery.duration_ms, long on a busy machine).
        wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds() - delivery.duration_ms / 1000
        assert 29 <= wait <= 31
        assert services.webhook_deliveries_sweep() == 0  # not due yet
        tasks.webhook_deliver(delivery.pk)  # a duplicate, early: ignored
        assert WebhookDelivery.objects.get().attempts == 1

        WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert services.webhook_deliveries_sweep() == 1
    finally:
        flaky.close()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


def test_on_a_worker_the_retry_is_scheduled_with_the_backoff_countdown(
    root, django_capture_on_commit_callbacks, settings, monkeypatch
):
    settings.PORTAL_WEBHOOK_RETRY_BASE_SECONDS = 30
    with django_capture_on_commit_callbacks():
        hook(root, "https://hooks.example.com/")
        webhooks.emit("model_version.created", DATA)
    monkeypatch.setattr(
        http, "post", lambda url, body, headers: http.HttpResult(None, "", "timed out", retryable=True, duration_ms=5)
    )
    scheduled = []

    class Retry(Exception):
        pass

    def retry(countdown):
        scheduled.append(countdown)
        return Retry()

    monkeypatch.setattr(tasks.webhook_deliver, "retry", retry)
    tasks.webhook_deliver.push_request(called_directly=False, is_eager=False)
    try:
        with pytest.raises(Retry):
            tasks.webhook_deliver.run(WebhookDelivery.objects.get().pk)
    finally:
        tasks.webhook_deliver.pop_request()

    assert scheduled == [30.0]
    assert WebhookDelivery.objects.get().status == "pending"


def test_the_sweep_sends_a_delivery_no_worker_took(root, receiver, django_capture_on_commit_callbacks):
    hook(root, receiver.url)
    with django_capture_on_commit_callbacks():  # queued, but the broker lost it
        webhooks.emit("model_version.created", DATA)
    assert services.webhook_deliveries_sweep() == 0  # it may still be on its way

    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert services.webhook_deliveries_sweep() == 1

    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_a_delivery_claimed_by_a_running_attempt_is_left_alone(root, receiver, django_capture_on_commit_callbacks):
    hook(root, receiver.url)
    with django_capture_on_commit_callbacks():
        webhooks.emit("model_version.created", DATA)
    WebhookDelivery.objects.update(claimed_until=timezone.now() + timedelta(minutes=1))

    tasks.webhook_deliver(WebhookDelivery.objects.get().pk)

    assert receiver.received == [] and WebhookDelivery.objects.get().attempts == 0


def test_a_slow_receiver_times_out_and_is_retried(root, django_capture_on_commit_callbacks, settings):
    settings.PORTAL_WEBHOOK_READ_TIMEOUT = 1
    settings.PORTAL_WEBHOOK_MAX_ATTEMPTS = 1
    slow = Receiver(secret=SECRET, delay=2)
    try:
        hook(root, slow.url)
        emit_and_deliver(django_capture_on_commit_callbacks)
    finally:
        slow.close()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.response_status is None
    assert "Timeout" in delivery.error


# ---------------------------------------------------------------- SSRF


def delivered_error(root, url, capture, monkeypatch=None, addresses=None):
    if addresses and monkeypatch:
        resolving_to(monkeypatch, *addresses)
    hook(root, url)
    emit_and_deliver(capture)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.response_status is None
    assert delivery.attempts == 1, "a refused destination is not retried"
    return delivery.error


def test_loopback_is_refused_without_the_allow_list(root, receiver, django_capture_on_commit_callbacks, settings):
    # A host name is accepted when the webhook is saved; its addresses are judged at delivery.
    hook(root, f"https://localhost:{receiver.port}/hook")
    settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS = []

    emit_and_deliver(django_capture_on_commit_callbacks)

    assert receiver.received == []
    assert "loopback" in WebhookDelivery.objects.get().error


def test_a_loopback_url_is_refused_when_saved(root, receiver, settings):
    webhook = hook(root, receiver.url)
    settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS = []

    with pytest.raises(InvalidParameter, match="loopback"):
        services.webhook_update(actor=root, webhook_id=webhook.webhook_id, url=f"https://127.0.0.1:{receiver.port}/")


def test_http_is_refused_once_the_address_is_no_longer_allowed(
    root,
    receiver,
    django_capture_on_commit_callbacks,
    settings,
):
    hook(root, receiver.url)
    settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8"]

    emit_and_deliver(django_capture_on_commit_callbacks)

    assert receiver.received == []
    assert "https only" in WebhookDelivery.objects.get().error


def test_a_host_name_resolving_to_a_private_address_is_refused(root, django_capture_on_commit_callbacks, monkeypatch):
    error = delivered_error(
        root, "https://hooks.example.com/", django_capture_on_commit_callbacks, monkeypatch, ["10.1.2.3"]
    )

    assert "10.1.2.3 is a private address" in error


def test_one_private_address_among_public_ones_is_enough_to_refuse(
    root, django_capture_on_commit_callbacks, monkeypatch
):
    error = delivered_error(
        root,
        "https://hooks.example.com/",
        django_capture_on_commit_callbacks,
        monkeypatch,
        ["93.184.215.14", "192.168.0.7"],
    )

    assert "192.168.0.7" in error


def test_the_metadata_address_is_refused_even_inside_an_allowed_network(
    root, django_capture_on_commit_callbacks, monkeypatch, settings
):
    settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS = ["169.254.0.0/16"]

    error = delivered_error(
        root, "https://metadata.example.com/", django_capture_on_commit_callbacks, monkeypatch, ["169.254.169.254"]
    )

    assert "cloud metadata" in error


def test_http_to_a_public_host_outside_the_allow_list_is_refused(root, django_capture_on_commit_callbacks, monkeypatch):
    error = delivered_error(
        root, "http://hooks.example.com/", django_capture_on_commit_callbacks, monkeypatch, ["93.184.215.14"]
    )

    assert "https only" in error


@pytest.mark.parametrize(
    "address, kind",
    [
        ("127.0.0.2", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.10.10", "link-local"),
        ("100.64.0.1", "non-public"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:0a00:0001::1", "private"),  # 6to4 around 10.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 around 10.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address, kind):
    import ipaddress

    problem = http.address_problem(ipaddress.ip_address(address), "https")

    assert problem is not None and kind in problem


def test_a_public_address_is_allowed_over_https():
    import ipaddress

    assert http.address_problem(ipaddress.ip_address("93.184.215.14"), "https") is None
    assert http.address_problem(ipaddress.ip_address("2606:2800:21f:cb07:6820:80da:af6b:8b2c"), "https") is None


def test_ipv6_loopback_is_refused_at_delivery(root, django_capture_on_commit_callbacks, monkeypatch):
    error = delivered_error(root, "https://v6.example.com/", django_capture_on_commit_callbacks, monkeypatch, ["::1"])

    assert "loopback" in error


def test_a_redirect_is_not_followed(root, django_capture_on_commit_callbacks):
    moving = Receiver(secret=SECRET, statuses=[302])
    try:
        hook(root, moving.url)
        emit_and_deliver(django_capture_on_commit_callbacks)
    finally:
        moving.close()

    assert [got.path for got in moving.received] == ["/hook"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_status, delivery.attempts) == ("failed", 302, 1)
    assert "not followed" in delivery.error


def test_an_unresolvable_host_is_retried(root, django_capture_on_commit_callbacks, monkeypatch, settings):
    settings.PORTAL_WEBHOOK_MAX_ATTEMPTS = 2

    def fail(host, port):
        raise OSError("Name or service not known")

    monkeypatch.setattr(http, "resolve", fail)
    hook(root, "https://nowhere.example.com/")
    emit_and_deliver(django_capture_on_commit_callbacks)

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert "Could not resolve" in delivery.error


def test_https_connects_to_the_checked_address_and_verifies_the_host_name(monkeypatch):
    resolving_to(monkeypatch, "93.184.215.14")
    made = {}

    class FakeResponse:
        status = 204
        headers = {}

        def read(self, amount):
            return b""

        def release_conn(self):
            pass

    class FakePool:
        def __init__(self, host, port, **kwargs):
            made.update(host=host, port=port, **kwargs)

        def urlopen(self, method, url, **kwargs):
            made.update(method=method, url=url, **kwargs)
            return FakeResponse()

        def close(self):
            pass

    monkeypatch.setattr(http.urllib3, "HTTPSConnectionPool", FakePool)

    result = http.post("https://Hooks.Example.com:8443/in?x=1", b"{}", {"Content-Type": "application/json"})

    assert result.status == 204 and result.error == ""
    assert (made["host"], made["port"]) == ("93.184.215.14", 8443)
    assert made["server_hostname"] == made["assert_hostname"] == "hooks.example.com"
    assert made["cert_reqs"] == "CERT_REQUIRED"
    assert made["headers"]["Host"] == "hooks.example.com:8443"
    assert made["url"] == "/in?x=1"
    assert made["redirect"] is False and made["retries"] is False


def test_the_environments_proxy_is_not_used(root, receiver, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    hook(root, receiver.url)

    emit_and_deliver(django_capture_on_commit_callbacks)

    assert len(receiver.received) == 1 and os.environ["http_proxy"]
