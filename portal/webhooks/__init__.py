"""Webhooks that speak MLflow's webhook protocol.

A webhook subscribes a URL to registry events (portal.webhooks.events). Other services
announce an event with

    from portal import webhooks
    webhooks.emit("model_version.created", data, registered_model=model)

inside the transaction of the change; deliveries are queued when it commits.

Each delivery is a POST of MLflow's body, {"entity", "action", "timestamp", "data"}, with
MLflow's headers (X-MLflow-Delivery-Id, X-MLflow-Timestamp, and X-MLflow-Signature:
"v1," + base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>" under the webhook's secret),
so a receiver written for MLflow verifies it unchanged. Deliveries are recorded
(WebhookDelivery), retried with exponential backoff, and sent only to destinations the
SSRF rules allow (portal.webhooks.http).

Modules: `events` (names, MLflow's spelling), `services` (configuration, emission,
delivery), `selectors` (who sees what), `http` (the guarded HTTP client), `secrets`
(encryption of secrets at rest). Doors: portal.mlflow_webhooks (MLflow's API) and
portal.webhooks_api (the native API).
"""

from portal.webhooks.services import emit

__all__ = ["emit"]
