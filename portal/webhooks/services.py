"""Webhook services: configuration (create, update, delete, test), emission and delivery.

Who may do what: a global webhook is a superuser's; a webhook scoped to a registered model
is its MANAGE holders' (portal.permissions). Every configuration change writes an audit
event in its transaction (never the secret: only whether there is one, and that it changed).

Delivery (see `emit` and `webhook_delivery_attempt`): an event creates one WebhookDelivery
row per subscribed ACTIVE webhook in the caller's transaction, and the delivery task is
queued when that transaction commits, so a rolled-back change is never announced. Each
attempt re-reads the webhook, so disabling or deleting one takes effect at once: a delivery
still queued for it is marked skipped and sent nowhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Model, Q
from django.utils import timezone

from portal import audit, permissions
from portal.errors import InvalidParameter, PermissionDenied
from portal.models import Webhook, WebhookDelivery
from portal.webhooks import events as webhook_events
from portal.webhooks import http
from portal.webhooks.secrets import SecretUnreadable, secret_decrypt, secret_encrypt
from portal.webhooks.selectors import webhook_get_for_user

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"

# MLflow's rule for webhook names: 1-63 letters, digits, '.', '_' and '-', starting and
# ending with a letter or digit.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
SECRET_MAX_LENGTH = 1000
DESCRIPTION_MAX_LENGTH = 5000
GLOBAL_ONLY_FOR_ADMINS = (
    "Only administrators may create global webhooks (they receive every registered model's events). "
    "To subscribe to a registered model you manage, create the webhook through the native API: "
    "POST /api/v1/webhooks/ with the model's name in registered_model."
)
# A task that finds its delivery claimed by another attempt leaves it alone this long.
_CLAIM_SLACK_SECONDS = 60
# A delivery that no task has taken this long after its event is re-queued by the sweep
# (the broker was down at commit).
_UNTAKEN_AFTER = timedelta(minutes=2)
# A retry task may run a little before the time it was scheduled for (clocks differ).
_EARLY_TOLERANCE = timedelta(seconds=5)


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- validation


def _name_validated(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidParameter(
            f"Webhook name {name!r} is invalid. It must be 1 to 63 characters long, start and end with a "
            "letter or digit, and contain only letters, digits, dots (.), underscores (_) and hyphens (-)."
        )
    return name


def _url_validated(url: Any) -> str:
    problem = http.url_problem(url)
    if problem:
        raise InvalidParameter(problem)
    return url


def _status_validated(status: Any) -> str:
    value = status.upper() if isinstance(status, str) else status
    if value not in Webhook.Status.values:
        raise InvalidParameter(f"Invalid webhook status {status!r}: expected ACTIVE or DISABLED.")
    return value


def _description_validated(description: Any) -> str:
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX_LENGTH:
        raise InvalidParameter(f"Webhook description must be a string of at most {DESCRIPTION_MAX_LENGTH} characters.")
    return description


def _secret_validated(secret: Any) -> str:
    if not isinstance(secret, str) or len(secret) > SECRET_MAX_LENGTH:
        raise InvalidParameter(f"Webhook secret must be a string of at most {SECRET_MAX_LENGTH} characters.")
    return secret


def _snapshot(webhook: Webhook) -> dict[str, Any]:
    """What the audit log keeps of a webhook: everything but the secret itself."""
    return {
        "name": webhook.name,
        "description": webhook.description,
        "url": webhook.url,
        "events": list(webhook.events),
        "status": webhook.status,
        "scope": webhook.scope,
        "registered_model": webhook.registered_model.name if webhook.registered_model else None,
        "has_secret": webhook.has_secret,
    }


def _audit(actor: Any, action: str, webhook: Webhook, **snapshots: Any) -> None:
    audit.record(
        actor=actor,
        action=action,
        object_type="webhook",
        object_id=webhook.webhook_id,
        object_name=webhook.name,
        resource=webhook.registered_model,
        **snapshots,
    )


# ---------------------------------------------------------------- configuration


@transaction.atomic
def webhook_create(
    *,
    actor: permissions.User,
    name: str,
    url: str,
    events: list[str],
    description: str = "",
    secret: str = "",
    status: str = Webhook.Status.ACTIVE,
    registered_model_name: str | None = None,
) -> Webhook:
    """A new webhook: global (superusers only) or, with `registered_model_name`, scoped to that
    model (its MANAGE holders). A model the actor may not read is reported missing."""
    if registered_model_name is None:
        if not permissions.is_active_user(actor) or not actor.is_superuser:
            raise PermissionDenied(GLOBAL_ONLY_FOR_ADMINS)
        model = None
    else:
        model = permissions.resource_get(actor, "registered_model", registered_model_name)
        permissions.require(actor, permissions.MANAGE, model)
    now = _now_ms()
    webhook = Webhook.objects.create(
        webhook_id=str(uuid.uuid4()),
        name=_name_validated(name),
        description=_description_validated(description or ""),
        url=_url_validated(url),
        events=webhook_events.events_validated(events),
        status=_status_validated(status or Webhook.Status.ACTIVE),
        scope=Webhook.Scope.REGISTERED_MODEL if model is not None else Webhook.Scope.GLOBAL,
        registered_model=model,
        creator=actor,
        secret_encrypted=secret_encrypt(_secret_validated(secret or "")),
        creation_timestamp=now,
        last_updated_timestamp=now,
    )
    _audit(actor, "webhook.created", webhook, after=_snapshot(webhook))
    return webhook


@transaction.atomic
def webhook_update(
    *,
    actor: permissions.User,
    webhook_id: str,
    name: str | None = None,
    description: str | None = None,
    url: str | None = None,
    events: list[str] | None = None,
    secret: str | None = None,
    status: str | None = None,
    keep_portal_events: bool = False,
) -> Webhook:
    """Change the given fields (None: unchanged; a secret of "" removes it). The scope never
    changes. With `keep_portal_events`, `events` replaces only the MLflow events (the MLflow
    API cannot see the portal's, so it must not drop them). No-op if nothing changes."""
    webhook = webhook_get_for_user(actor, webhook_id, for_update=True)
    before = _snapshot(webhook)
    changed = False
    if name is not None and name != webhook.name:
        webhook.name, changed = _name_validated(name), True
    if description is not None and description != webhook.description:
        webhook.description, changed = _description_validated(description), True
    if url is not None and url != webhook.url:
        webhook.url, changed = _url_validated(url), True
    if events is not None:
        new_events = webhook_events.events_validated(events)
        if keep_portal_events:
            new_events += [e for e in webhook.events if e not in webhook_events.MLFLOW_EVENTS]
        if new_events != webhook.events:
            webhook.events, changed = new_events, True
    if status is not None and _status_validated(status) != webhook.status:
        webhook.status, changed = _status_validated(status), True
    secret_changed = False
    if secret is not None:
        current = secret_decrypt_or_none(webhook)
        if _secret_validated(secret) != current:
            webhook.secret_encrypted, changed, secret_changed = secret_encrypt(secret), True, True
    if not changed:
        return webhook
    webhook.last_updated_timestamp = _now_ms()
    webhook.save()
    after = _snapshot(webhook)
    if secret_changed:
        after["secret_changed"] = True
    _audit(actor, "webhook.updated", webhook, before=before, after=after)
    return webhook


def secret_decrypt_or_none(webhook: Webhook) -> str | None:
    """The webhook's secret, or None when it cannot be decrypted (it then counts as changed)."""
    try:
        return secret_decrypt(webhook.secret_encrypted)
    except SecretUnreadable:
        return None


@transaction.atomic
def webhook_delete(*, actor: permissions.User, webhook_id: str) -> None:
    """Delete a webhook (softly: its deliveries stay listable). Nothing is sent to it after
    this commits, including deliveries already queued."""
    webhook = webhook_get_for_user(actor, webhook_id, for_update=True)
    webhook.deleted_timestamp = webhook.last_updated_timestamp = _now_ms()
    webhook.save(update_fields=["deleted_timestamp", "last_updated_timestamp"])
    _audit(actor, "webhook.deleted", webhook, before=_snapshot(webhook))


@dataclass(frozen=True)
class TestResult:
    """MLflow's WebhookTestResult."""

    success: bool
    response_status: int | None = None
    response_body: str | None = None
    error_message: str | None = None


def webhook_test(*, actor: permissions.User, webhook_id: str, event: str | None = None) -> TestResult:
    """Send one example delivery of `event` (default: the webhook's first) now, signed as
    a real one, and say how the receiver answered. Not recorded as a delivery; disabled
    webhooks may be tested too (as in MLflow)."""
    webhook = webhook_get_for_user(actor, webhook_id)
    if event is None:
        event = webhook.events[0]
    else:
        event = webhook_events.events_validated([event])[0]
    model_name = webhook.registered_model.name if webhook.registered_model else "example_model"
    body = payload_json(event, webhook_events.example_data(event, model_name))
    try:
        secret = secret_decrypt(webhook.secret_encrypted)
    except SecretUnreadable as exc:
        return TestResult(success=False, error_message=str(exc))
    result = http.post(webhook.url, body.encode(), delivery_headers(str(uuid.uuid4()), body, secret))
    if result.status is None:
        return TestResult(success=False, error_message=f"Failed to test webhook: {result.error}")
    return TestResult(
        success=result.status < 400,
        response_status=result.status,
        response_body=result.body,
        # As MLflow: an answer is reported by its status; only a redirect (which MLflow
        # would follow and the portal does not) gets a word of explanation.
        error_message=result.error if 300 <= result.status < 400 else None,
    )


# ---------------------------------------------------------------- the wire format


def payload_json(event: str, data: dict[str, Any]) -> str:
    """The body MLflow sends: entity, action, an ISO 8601 UTC timestamp and the data, as
    json.dumps writes it by default (the receiver verifies the signature over these bytes)."""
    entity, action = webhook_events.split(event)
    return json.dumps({"entity": entity, "action": action, "timestamp": timezone.now().isoformat(), "data": data})


def signature(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """MLflow's signature: "v1," + base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>"."""
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def delivery_headers(delivery_id: str, body: str, secret: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", DELIVERY_ID_HEADER: delivery_id, TIMESTAMP_HEADER: timestamp}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, delivery_id, timestamp, body)
    return headers


# ---------------------------------------------------------------- emission


def emit(event: str, data: dict[str, Any], *, registered_model: Model | None = None) -> None:
    """Announce `event` (one of portal.webhooks.events.EVENTS) with its `data` to the ACTIVE
    webhooks subscribed to it: the global ones, plus those scoped to `registered_model`.

    Call inside the transaction of the change: the delivery rows are written there, and
    the deliveries are queued only when it commits (nothing is sent for a rolled-back
    change). `data` must be JSON-serialisable; it becomes the body's "data". Cheap when
    nobody subscribes (one query)."""
    if event not in webhook_events.EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    model_id = registered_model.pk if registered_model is not None else None
    webhooks = [w for w in Webhook.objects.active().for_registered_model(model_id) if event in w.events]
    if not webhooks:
        return
    body = payload_json(event, data)
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(webhook=w, delivery_id=str(uuid.uuid4()), event=event, payload=body, created_at=now)
            for w in webhooks
        ]
    )
    for delivery in deliveries:
        # robust: a broker that is down must not fail the request whose change committed;
        # the sweep sends what was not queued.
        transaction.on_commit(partial(_enqueue, delivery.pk), robust=True)


def _enqueue(delivery_pk: int) -> None:
    from portal.tasks import webhook_deliver

    webhook_deliver.delay(delivery_pk)


# ---------------------------------------------------------------- delivery


def _not_deliverable(webhook: Webhook) -> str | None:
    if webhook.deleted_timestamp is not None:
        return "The webhook was deleted before this delivery was sent."
    if webhook.scope == Webhook.Scope.REGISTERED_MODEL and webhook.registered_model_id is None:
        return "The webhook's registered model was deleted before this delivery was sent."
    if webhook.status != Webhook.Status.ACTIVE:
        return "The webhook was disabled before this delivery was sent."
    return None


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...): BASE * 2^(attempt-1)."""
    return float(settings.PORTAL_WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 1))


def webhook_delivery_attempt(*, delivery_id: int) -> float | None:
    """Make the next attempt of a pending delivery. Returns the seconds until the following
    attempt is due when this one failed in a way worth retrying, else None.

    Idempotent and safe to run twice at once: a delivery that is not pending, not yet due,
    or claimed by a running attempt is left alone (the claim is a conditional UPDATE). The
    webhook is read again here, so its current URL and secret are used, and a disabled or
    deleted webhook gets nothing (the delivery is marked skipped). Makes the HTTP request
    outside any transaction."""
    now = timezone.now()
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return None
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + _EARLY_TOLERANCE:
        return None  # a duplicate of a task scheduled for later
    webhook = delivery.webhook
    reason = _not_deliverable(webhook)
    if reason:
        WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING).update(
            status=WebhookDelivery.Status.SKIPPED, error=reason, completed_at=now, next_attempt_at=None
        )
        return None
    lease = settings.PORTAL_WEBHOOK_CONNECT_TIMEOUT + settings.PORTAL_WEBHOOK_READ_TIMEOUT + _CLAIM_SLACK_SECONDS
    claimed = (
        WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempts=delivery.attempts
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(attempts=F("attempts") + 1, claimed_until=now + timedelta(seconds=lease), last_attempt_at=now)
    )
    if claimed != 1:
        return None
    attempt = delivery.attempts + 1
    try:
        secret = secret_decrypt(webhook.secret_encrypted)
    except SecretUnreadable as exc:
        result = http.HttpResult(None, "", str(exc), retryable=False, duration_ms=0)
    else:
        headers = delivery_headers(delivery.delivery_id, delivery.payload, secret)
        result = http.post(webhook.url, delivery.payload.encode(), headers)
    return _attempt_record(delivery, attempt, now, result)


def _attempt_record(delivery: WebhookDelivery, attempt: int, started: Any, result: http.HttpResult) -> float | None:
    finished = timezone.now()
    succeeded = result.status is not None and 200 <= result.status < 300
    retry_in = None
    if succeeded:
        status = WebhookDelivery.Status.SUCCEEDED
    elif result.retryable and attempt < settings.PORTAL_WEBHOOK_MAX_ATTEMPTS:
        status = WebhookDelivery.Status.PENDING
        retry_in = retry_delay(attempt)
    else:
        status = WebhookDelivery.Status.FAILED
    entry = {
        "attempt": attempt,
        "started_at": started.isoformat(),
        "response_status": result.status,
        "error": result.error,
        "duration_ms": result.duration_ms,
    }
    log = [*delivery.attempt_log, entry]
    WebhookDelivery.objects.filter(pk=delivery.pk, attempts=attempt).update(
        status=status,
        response_status=result.status,
        error=result.error,
        duration_ms=result.duration_ms,
        attempt_log=log,
        claimed_until=None,
        next_attempt_at=finished + timedelta(seconds=retry_in) if retry_in is not None else None,
        completed_at=None if status == WebhookDelivery.Status.PENDING else finished,
    )
    if not succeeded:
        logger.warning(
            "Webhook delivery %s (%s) attempt %d: %s", delivery.delivery_id, delivery.event, attempt, result.error
        )
    return retry_in


def webhook_deliveries_sweep(*, limit: int = 500) -> int:
    """Queue the pending deliveries that are due: retries whose time has come, attempts
    whose worker died (claim expired), and deliveries no task took (the broker was down
    when their change committed). Returns how many were queued. Run by beat, or by hand
    with `manage.py webhook_deliveries_sweep` on the embedded default."""
    now = timezone.now()
    due = (
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .filter(Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, created_at__lte=now - _UNTAKEN_AFTER))
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )
    ids = list(due)
    for pk in ids:
        _enqueue(pk)
    return len(ids)
