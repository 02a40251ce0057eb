"""Celery tasks of the portal: thin wrappers around idempotent services.

Webhook deliveries: `webhook_deliver` makes one attempt (portal.webhooks.services) and, on
a worker, schedules the next one with Celery's retry countdown (exponential backoff).
Without a worker (tasks run eagerly on the embedded default, or the task is called
directly), nothing may sleep in the caller's request: a failed attempt is recorded and the
delivery stays pending until its retry is due, when the sweep (beat, or
`manage.py webhook_deliveries_sweep`) sends it. With PORTAL_WEBHOOK_RETRY_BASE_SECONDS=0
(tests) the retries run at once, in the same call.
"""

from celery import shared_task

from portal.webhooks import services as webhook_services


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None, ignore_result=True)
def webhook_deliver(self, delivery_id: int) -> None:
    while True:
        retry_in = webhook_services.webhook_delivery_attempt(delivery_id=delivery_id)
        if retry_in is None:
            return
        if not (self.request.is_eager or self.request.called_directly):
            # The service counts attempts and stops them; Celery only waits.
            raise self.retry(countdown=retry_in)
        if retry_in > 0:
            return  # no worker to wait on: the sweep sends it when due


@shared_task(acks_late=True, ignore_result=True)
def webhook_deliveries_sweep() -> int:
    return webhook_services.webhook_deliveries_sweep()
