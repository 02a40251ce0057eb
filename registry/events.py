"""What the registry tells webhooks: MLflow's registry events, with MLflow's `data` shapes
(mlflow/webhooks/types.py), and the portal's own governance events.

Each function is called by a service inside its transaction; portal.webhooks.emit records
the deliveries there and sends them only once the transaction commits.
"""

from typing import Any

from registry.models import ModelVersion, RegisteredModel, TransitionRequest


def _emit(event: str, data: dict[str, Any], model: RegisteredModel) -> None:
    from portal import webhooks

    webhooks.emit(event, data, registered_model=model)


def registered_model_created(model: RegisteredModel, tags: dict[str, str]) -> None:
    _emit(
        "registered_model.created",
        {"name": model.name, "tags": dict(tags), "description": model.description or None},
        model,
    )


def model_version_created(version: ModelVersion, tags: dict[str, str]) -> None:
    _emit(
        "model_version.created",
        {
            "name": version.registered_model.name,
            "version": str(version.version),
            "source": version.source,
            "run_id": version.run_id,
            "tags": dict(tags),
            "description": version.description or None,
        },
        version.registered_model,
    )


def model_version_tag_set(version: ModelVersion, key: str, value: str) -> None:
    _emit(
        "model_version_tag.set",
        {"name": version.registered_model.name, "version": str(version.version), "key": key, "value": value},
        version.registered_model,
    )


def model_version_tag_deleted(version: ModelVersion, key: str) -> None:
    _emit(
        "model_version_tag.deleted",
        {"name": version.registered_model.name, "version": str(version.version), "key": key},
        version.registered_model,
    )


def model_version_alias_created(model: RegisteredModel, alias: str, version_number: int) -> None:
    _emit("model_version_alias.created", {"name": model.name, "alias": alias, "version": str(version_number)}, model)


def model_version_alias_deleted(model: RegisteredModel, alias: str) -> None:
    _emit("model_version_alias.deleted", {"name": model.name, "alias": alias}, model)


def model_version_stage_changed(
    model: RegisteredModel, version_number: int, from_stage: str, to_stage: str, request_id: int | None
) -> None:
    _emit(
        "model_version.stage_changed",
        {
            "name": model.name,
            "version": str(version_number),
            "from_stage": from_stage,
            "to_stage": to_stage,
            "transition_request_id": str(request_id) if request_id else None,
        },
        model,
    )


def transition_request_event(request: TransitionRequest, what: str, *, actor_name: str = "", comment: str = "") -> None:
    """`transition_request.<what>`: created, approved, rejected, applied or failed."""
    _emit(
        f"transition_request.{what}",
        {
            "id": str(request.pk),
            "name": request.registered_model.name,
            "version": str(request.version_number),
            "action": request.action,
            "target": request.target,
            "state": request.state,
            "requester": request.requester.get_username() if request.requester else None,
            "actor": actor_name or None,
            "comment": comment or None,
            "reason": request.state_reason or None,
        },
        request.registered_model,
    )
