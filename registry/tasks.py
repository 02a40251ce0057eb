"""Celery tasks of the registry: thin wrappers around idempotent services.

`transition_request_apply` is acknowledged late and rejected when its worker is lost, so a
worker killed mid-task leaves the message on the broker and another worker runs it again;
the service's row locks and state check make the second run a no-op if the first one
committed. The broker's visibility timeout (settings) is longer than the task can run.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import InterfaceError, OperationalError

from registry.services import requests

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=8,
    soft_time_limit=120,
    time_limit=150,
)
def transition_request_apply(request_id: int) -> str | None:
    request = requests.transition_request_apply(request_id)
    return request.state if request is not None else None


@shared_task(acks_late=True)
def transition_requests_sweep() -> int:
    """Re-queue approved requests that no task has applied (the broker was down when they
    were approved, or their task was lost). Applying is idempotent, so a request whose task
    is merely slow is harmless to queue twice. Nothing expires here."""
    waiting = requests.approved_request_ids_waiting(settings.PORTAL_APPLY_SWEEP_AFTER_SECONDS * 1000)
    for request_id in waiting:
        transition_request_apply.delay(request_id)
    if waiting:
        logger.info("re-queued %d approved transition request(s): %s", len(waiting), waiting)
    return len(waiting)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def email_send(subject: str, body: str, recipients: list[str]) -> int:
    return send_mail(subject, body, None, recipients)
