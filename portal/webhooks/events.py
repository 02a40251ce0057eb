"""The events webhooks subscribe to, how MLflow's API spells them, and example data for tests.

An event is named "<entity>.<action>". The MLflow registry events carry MLflow's `data`
shapes (mlflow/webhooks/types.py); the portal's own events are sent the same way but can
only be subscribed to through the native API, because the mlflow client refuses entities
and actions it does not know (see portal.mlflow_webhooks).
"""

from typing import Any

from portal.errors import InvalidParameter

MLFLOW_EVENTS = (
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
)
PORTAL_EVENTS = (
    "model_version.stage_changed",
    "transition_request.created",
    "transition_request.approved",
    "transition_request.rejected",
    "transition_request.applied",
    "transition_request.failed",
)
EVENTS = MLFLOW_EVENTS + PORTAL_EVENTS

# MLflow's other events (prompts, budgets): valid for its client, never sent by the portal.
_MLFLOW_UNSENT = {
    "prompt.created",
    "prompt_version.created",
    "prompt_tag.set",
    "prompt_tag.deleted",
    "prompt_version_tag.set",
    "prompt_version_tag.deleted",
    "prompt_alias.created",
    "prompt_alias.deleted",
    "budget_policy.exceeded",
}


def split(event: str) -> tuple[str, str]:
    """("model_version", "created") for "model_version.created"."""
    entity, _, action = event.partition(".")
    return entity, action


def events_validated(events: Any) -> list[str]:
    """A non-empty list of known event names, in the order given, each once."""
    if not isinstance(events, (list, tuple)) or not events:
        raise InvalidParameter("Webhook events must be a non-empty list.")
    result: list[str] = []
    for event in events:
        if not isinstance(event, str) or event not in EVENTS:
            if event in _MLFLOW_UNSENT:
                raise InvalidParameter(f"Event {event!r} is not sent by this server. It sends: {', '.join(EVENTS)}.")
            raise InvalidParameter(f"Invalid webhook event {event!r}: expected one of {', '.join(EVENTS)}.")
        if event not in result:
            result.append(event)
    return result


# ---------------------------------------------------------------- MLflow's spelling


def mlflow_json(event: str) -> dict[str, str]:
    """{"entity": "MODEL_VERSION", "action": "CREATED"}: a WebhookEvent as MLflow's JSON has it."""
    entity, action = split(event)
    return {"entity": entity.upper(), "action": action.upper()}


def from_mlflow_json(value: Any) -> str:
    """The event name of a WebhookEvent in MLflow's JSON (enum names, any case)."""
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("entity"), str)
        or not isinstance(value.get("action"), str)
    ):
        raise InvalidParameter(f"Invalid webhook event {value!r}: expected an object with entity and action.")
    event = f"{value['entity'].lower()}.{value['action'].lower()}"
    if event not in MLFLOW_EVENTS:
        if event in _MLFLOW_UNSENT:
            raise InvalidParameter(f"Event {event!r} is not sent by this server.")
        raise InvalidParameter(
            f"Invalid webhook event {event!r} for the MLflow API: expected one of {', '.join(MLFLOW_EVENTS)}."
        )
    return event


# ---------------------------------------------------------------- test deliveries


def example_data(event: str, model_name: str = "example_model") -> dict[str, Any]:
    """The `data` of a test delivery of `event`: its real shape, made-up values."""
    version = {"name": model_name, "version": "1"}
    if event == "registered_model.created":
        return {"name": model_name, "tags": {"example_key": "example_value"}, "description": "An example model"}
    if event == "model_version.created":
        return {
            **version,
            "source": "models:/m-0123456789abcdef",
            "run_id": "0123456789abcdef0123456789abcdef",
            "tags": {"example_key": "example_value"},
            "description": "An example model version",
        }
    if event == "model_version_tag.set":
        return {**version, "key": "example_key", "value": "example_value"}
    if event == "model_version_tag.deleted":
        return {**version, "key": "example_key"}
    if event == "model_version_alias.created":
        return {"name": model_name, "alias": "champion", "version": "1"}
    if event == "model_version_alias.deleted":
        return {"name": model_name, "alias": "champion"}
    if event == "model_version.stage_changed":
        return {**version, "from_stage": "Staging", "to_stage": "Production", "transition_request_id": "1"}
    if event.startswith("transition_request."):
        state = {"created": "pending", "approved": "approved", "rejected": "rejected"}.get(split(event)[1])
        return {
            "id": "1",
            **version,
            "action": "transition_stage",
            "target": "Production",
            "state": state or split(event)[1],
            "requester": "alice",
            "actor": "bob",
            "comment": "An example comment",
            "reason": None,
        }
    raise ValueError(f"unknown webhook event {event!r}")
