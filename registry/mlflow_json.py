"""Registry objects in MLflow's JSON shapes (field names from model_registry.proto)."""

from typing import Any

from registry.models import ModelAlias, ModelVersion, RegisteredModel
from registry.selectors import ModelVersionData, RegisteredModelData


def _username(user) -> str:
    return user.get_username() if user is not None else ""


def model_version_json(data: ModelVersionData) -> dict[str, Any]:
    version: ModelVersion = data.version
    result: dict[str, Any] = {
        "name": version.registered_model.name,
        "version": str(version.version),
        "creation_timestamp": version.creation_timestamp,
        "last_updated_timestamp": version.last_updated_timestamp,
        "user_id": _username(version.owner),
        "current_stage": version.current_stage,
        "source": version.source,
        "status": version.status,
        "tags": [{"key": t.key, "value": t.value} for t in data.tags],
        "aliases": list(data.aliases),
    }
    if version.description:
        result["description"] = version.description
    if version.run_id:
        result["run_id"] = version.run_id
    if version.run_link:
        result["run_link"] = version.run_link
    if version.status_message:
        result["status_message"] = version.status_message
    if version.logged_model_id:
        result["model_id"] = version.logged_model_id
    return result


def alias_json(alias: ModelAlias) -> dict[str, Any]:
    return {"alias": alias.alias, "version": str(alias.model_version.version)}


def registered_model_json(data: RegisteredModelData) -> dict[str, Any]:
    model: RegisteredModel = data.model
    return {
        "name": model.name,
        "creation_timestamp": model.creation_timestamp,
        "last_updated_timestamp": model.last_updated_timestamp,
        "user_id": _username(model.owner),
        "description": model.description,
        "latest_versions": [model_version_json(v) for v in data.latest_versions],
        "tags": [{"key": t.key, "value": t.value} for t in data.tags],
        "aliases": [alias_json(a) for a in data.aliases],
    }
