"""MLflow door for webhooks (/api/2.0/mlflow/webhooks...), as the mlflow client's
WebhookService calls it: create, list, get, update (PATCH), delete and test.

What the MLflow API cannot say, and what it does instead:

- Scope. MLflow's webhooks are global and its create has no model field, so a create here
  makes a global webhook, which only superusers may (others get PERMISSION_DENIED pointing
  to the native API, POST /api/v1/webhooks/ with `registered_model`, where model managers
  create webhooks for their models). Model-scoped webhooks are listed, read, changed,
  tested and deleted here like any other by those who may see them.
- Portal events. The client parses events into its own enums and fails on any it does not
  know (an unknown entity or action parses as unspecified, which its Webhook refuses), and
  on a webhook without events. So here a webhook shows only its MLflow events; a webhook
  subscribed only to portal events is left out of lists and answered RESOURCE_DOES_NOT_EXIST
  (with a pointer to the native API) by get, update and test; delete works. An update's
  `events` replace the MLflow events and keep the portal ones.
"""

import base64
import binascii
import json
from typing import Any

from django.http import HttpRequest
from django.urls import path

from portal.errors import InvalidParameter, NotFound
from portal.mlflow_http import Params, mlflow_endpoint, page_json
from portal.models import Webhook
from portal.webhooks import events as webhook_events
from portal.webhooks import selectors, services

Json = dict[str, Any]

MAX_RESULTS_DEFAULT = 100
MAX_RESULTS_LIMIT = 1000


def _mlflow_events(webhook: Webhook) -> list[str]:
    return [event for event in webhook.events if event in webhook_events.MLFLOW_EVENTS]


def webhook_json(webhook: Webhook) -> Json:
    """A Webhook as MLflow's JSON has it (never the secret)."""
    result: Json = {"webhook_id": webhook.webhook_id, "name": webhook.name}
    if webhook.description:
        result["description"] = webhook.description
    result["url"] = webhook.url
    result["events"] = [webhook_events.mlflow_json(event) for event in _mlflow_events(webhook)]
    result["status"] = webhook.status
    result["creation_timestamp"] = webhook.creation_timestamp
    result["last_updated_timestamp"] = webhook.last_updated_timestamp
    return result


def _shown(webhook: Webhook) -> Webhook:
    if not _mlflow_events(webhook):
        raise NotFound(
            f"Webhook {webhook.webhook_id} subscribes only to portal events, which the MLflow API cannot show: "
            f"use /api/v1/webhooks/{webhook.webhook_id}/."
        )
    return webhook


def _events(params: Params, *, required: bool) -> list[str] | None:
    if not params.has("events"):
        if required:
            raise Params._missing("events")
        return None
    items = params.list("events")
    if not items:
        if required:
            raise InvalidParameter("Webhook events must be a non-empty list.")
        return None  # as MLflow: an empty list leaves the events as they are
    return [webhook_events.from_mlflow_json(item) for item in items]


def _status(params: Params) -> str | None:
    value = params.str("status")
    return value or None


def _page_token_decode(token: str | None) -> int | None:
    if not token:
        return None
    try:
        document = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        before = document["before"]
    except (binascii.Error, UnicodeError, ValueError, TypeError, KeyError):
        raise InvalidParameter(f"Invalid page token {token!r}.") from None
    if not isinstance(before, int) or isinstance(before, bool):
        raise InvalidParameter(f"Invalid page token {token!r}.")
    return before


def _page_token_encode(before: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": before}).encode()).decode()


# ---------------------------------------------------------------- handlers


def create_webhook(request: HttpRequest, params: Params) -> Json:
    webhook = services.webhook_create(
        actor=request.user,
        name=params.str("name", required=True),
        url=params.str("url", required=True),
        events=_events(params, required=True),
        description=params.str("description", default=""),
        secret=params.str("secret", default=""),
        status=_status(params) or Webhook.Status.ACTIVE,
    )
    return {"webhook": webhook_json(webhook)}


def list_webhooks(request: HttpRequest, params: Params) -> Json:
    max_results = params.int("max_results") or MAX_RESULTS_DEFAULT
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidParameter(f"max_results must be between 1 and {MAX_RESULTS_LIMIT}.")
    before = _page_token_decode(params.str("page_token"))
    webhooks = selectors.webhook_list_for_user(request.user)
    if before is not None:
        webhooks = webhooks.filter(pk__lt=before)
    page: list[Webhook] = []
    more = False
    for webhook in webhooks.iterator(chunk_size=max_results + 1):
        if not _mlflow_events(webhook):
            continue
        if len(page) == max_results:
            more = True
            break
        page.append(webhook)
    token = _page_token_encode(page[-1].pk) if more else None
    return page_json("webhooks", [webhook_json(w) for w in page], token)


def get_webhook(request: HttpRequest, params: Params, webhook_id: str) -> Json:
    return {"webhook": webhook_json(_shown(selectors.webhook_get_for_user(request.user, webhook_id)))}


def update_webhook(request: HttpRequest, params: Params, webhook_id: str) -> Json:
    _shown(selectors.webhook_get_for_user(request.user, webhook_id))
    webhook = services.webhook_update(
        actor=request.user,
        webhook_id=webhook_id,
        # As MLflow: an empty name or URL leaves it unchanged; description and secret are
        # set to whatever is given, "" included.
        name=params.str("name") or None,
        description=params.str("description"),
        url=params.str("url") or None,
        events=_events(params, required=False),
        secret=params.str("secret"),
        status=_status(params),
        keep_portal_events=True,
    )
    return {"webhook": webhook_json(webhook)}


def delete_webhook(request: HttpRequest, params: Params, webhook_id: str) -> Json:
    services.webhook_delete(actor=request.user, webhook_id=webhook_id)
    return {}


def test_webhook(request: HttpRequest, params: Params, webhook_id: str) -> Json:
    webhook = _shown(selectors.webhook_get_for_user(request.user, webhook_id))
    raw_event = params.data.get("event")
    event = webhook_events.from_mlflow_json(raw_event) if raw_event is not None else _mlflow_events(webhook)[0]
    result = services.webhook_test(actor=request.user, webhook_id=webhook_id, event=event)
    body: Json = {"success": result.success}
    if result.response_status is not None:
        body["response_status"] = result.response_status
    if result.response_body:
        body["response_body"] = result.response_body
    if result.error_message:
        body["error_message"] = result.error_message
    return {"result": body}


urlpatterns = [
    path("webhooks", mlflow_endpoint({"POST": create_webhook, "GET": list_webhooks})),
    path(
        "webhooks/<str:webhook_id>",
        mlflow_endpoint({"GET": get_webhook, "PATCH": update_webhook, "DELETE": delete_webhook}),
    ),
    path("webhooks/<str:webhook_id>/test", mlflow_endpoint({"POST": test_webhook})),
]
