"""Logged-model services: MLflow 3's models that live next to runs, not inside them.

`mlflow.<flavor>.log_model` creates a logged model (PENDING), links it to the run,
uploads the files to `<experiment location>/models/<id>/artifacts` through the artifact
proxy, then finalizes it (READY). Everything that changes a logged model goes through here.

Access: a logged model takes it from its experiment (portal.permissions). Creating one
needs the right to add to the experiment (and EDIT on its source run); changing one needs
EDIT, deleting one MANAGE (in the Default experiment its creator has both). Deleted models are missing to every
service except delete, which is idempotent so that a retried DELETE does not fail.
"""

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from portal import permissions
from portal.errors import InvalidParameter, NotFound
from tracking.models import (
    LifecycleStage,
    LoggedModel,
    LoggedModelParam,
    LoggedModelStatus,
    LoggedModelTag,
)
from tracking.paths import store_path
from tracking.selectors import experiment_get_for_user, logged_model_lock_for_user, run_get_for_user
from tracking.services.immutable_params import params_insert_immutable
from tracking.services.runs import random_run_name
from tracking.validation import (
    MAX_PARAMS_TAGS_PER_BATCH,
    now_ms,
    validate_params,
    validate_tags,
)

MAX_NAME_LENGTH = 500  # LoggedModel.name
MAX_MODEL_TYPE_LENGTH = 500  # LoggedModel.model_type
# The client sends a model's tags in one request (no batching as for params); this bounds
# the work of one request without getting in the way of any real use.
MAX_TAGS_PER_REQUEST = 1000
# Characters the client refuses in a model name too (mlflow.utils.validation): a name is a
# path segment of `runs:/<run_id>/<name>` and is quoted in search filters.
_NAME_FORBIDDEN = ("/", ":", ".", "%", '"', "'")

# What FinalizeLoggedModel may set. A failed upload may be retried and finalized READY, and
# a READY model may be marked failed (a client that finds its upload broken): MLflow allows
# both, and neither loses data. PENDING is only ever the status a model is created with.
FINAL_STATUSES = {LoggedModelStatus.READY, LoggedModelStatus.UPLOAD_FAILED}
# The protobuf enum's numbers, which a client may send instead of the names.
_STATUS_NUMBERS = {1: LoggedModelStatus.PENDING, 2: LoggedModelStatus.READY, 3: LoggedModelStatus.UPLOAD_FAILED}


def _name_validated(name: Any) -> str:
    if name is None or name == "":
        return random_run_name()
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter(f"Invalid model name {name!r}: expected a non-empty string.")
    if any(ch in name for ch in _NAME_FORBIDDEN):
        raise InvalidParameter(
            f"Invalid model name ({name!r}) provided. Model name must be a non-empty string "
            f"and cannot contain the following characters: {_NAME_FORBIDDEN}"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(f"Model name had length {len(name)}, which exceeded length limit of {MAX_NAME_LENGTH}.")
    return name


def _params_validated(params: Any) -> dict[str, str]:
    return validate_params(params, limit=MAX_PARAMS_TAGS_PER_BATCH)


def status_parse(status: Any) -> LoggedModelStatus:
    """A LoggedModelStatus from its enum name (LOGGED_MODEL_READY, or READY) or number."""
    if isinstance(status, int) and not isinstance(status, bool) and status in _STATUS_NUMBERS:
        return _STATUS_NUMBERS[status]
    if isinstance(status, str):
        name = status.strip().upper()
        if name.isdigit() and int(name) in _STATUS_NUMBERS:
            return _STATUS_NUMBERS[int(name)]
        for choice in LoggedModelStatus:
            if name in (choice.value, choice.value.removeprefix("LOGGED_MODEL_")):
                return choice
        if name == "FAILED":
            return LoggedModelStatus.UPLOAD_FAILED
    raise InvalidParameter(
        f"Invalid logged model status {status!r}: expected one of {', '.join(LoggedModelStatus.values)}."
    )


def _model_for_write(
    actor: AbstractBaseUser, model_id: str, *, allow_deleted: bool = False, action: str = permissions.EDIT
) -> LoggedModel:
    model = logged_model_lock_for_user(actor, model_id, allow_deleted=allow_deleted)
    permissions.require(actor, action, model)
    return model


def _touch(model: LoggedModel) -> None:
    model.last_updated_timestamp_ms = now_ms()
    LoggedModel.objects.filter(pk=model.pk).update(last_updated_timestamp_ms=model.last_updated_timestamp_ms)


def _params_write(model: LoggedModel, params: dict[str, str]) -> None:
    """Params are immutable, as a run's are: the same value again is fine, another is not."""
    params_insert_immutable(
        model=LoggedModelParam, owner_field="model", owner_id=model.pk, params=params, label=f"model ID='{model.pk}'"
    )


def _tags_write(model: LoggedModel, tags: dict[str, str]) -> None:
    if not tags:
        return
    LoggedModelTag.objects.bulk_create(
        [LoggedModelTag(model=model, key=k, value=v) for k, v in tags.items()],
        update_conflicts=True,
        unique_fields=["model", "key"],
        update_fields=["value"],
    )


# ---------------------------------------------------------------- lifecycle


@transaction.atomic
def logged_model_create(
    *,
    actor: AbstractBaseUser,
    experiment_id: str | int | None,
    name: str | None = None,
    source_run_id: str | None = None,
    params: list[dict] | None = None,
    tags: list[dict] | None = None,
    model_type: str | None = None,
) -> LoggedModel:
    """Create a PENDING logged model in an active experiment the actor may add to.

    `name` defaults to a generated one, as MLflow's does. `source_run_id`, when given, must
    be a run of the same experiment that the actor can read. The model's files go under
    `<experiment artifact location>/models/<model id>/artifacts`.
    """
    if experiment_id is None or experiment_id == "":
        raise InvalidParameter("Missing value for required parameter 'experiment_id'.")
    experiment = experiment_get_for_user(actor, experiment_id)
    permissions.require_add_child(actor, experiment)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter(
            f"The experiment {experiment.pk} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )
    model_name = _name_validated(name)
    param_values = _params_validated(params)
    tag_values = validate_tags(tags, limit=MAX_TAGS_PER_REQUEST)
    if model_type is not None and not isinstance(model_type, str):
        raise InvalidParameter(f"Invalid model_type {model_type!r}: expected a string.")
    if model_type and len(model_type) > MAX_MODEL_TYPE_LENGTH:
        raise InvalidParameter(
            f"model_type had length {len(model_type)}, which exceeded length limit of {MAX_MODEL_TYPE_LENGTH}."
        )
    source_run = None
    if source_run_id:
        # The model becomes what `runs:/<run>/<name>` resolves to: only someone who may write
        # to the run may say it came from there.
        source_run = run_get_for_user(actor, source_run_id)
        permissions.require(actor, permissions.EDIT, source_run)
        if source_run.experiment_id != experiment.pk:
            raise InvalidParameter(
                f"Run '{source_run.pk}' belongs to experiment {source_run.experiment_id}, not to experiment "
                f"{experiment.pk} where the model is being created."
            )
    model_id = f"m-{uuid.uuid4().hex}"
    now = now_ms()
    model = LoggedModel.objects.create(
        id=model_id,
        experiment=experiment,
        name=model_name,
        source_run=source_run,
        owner=actor,
        model_type=model_type or "",
        artifact_location=f"{experiment.artifact_location.rstrip('/')}/models/{model_id}/artifacts",
        status=LoggedModelStatus.PENDING,
        creation_timestamp_ms=now,
        last_updated_timestamp_ms=now,
    )
    _params_write(model, param_values)
    _tags_write(model, tag_values)
    return model


@transaction.atomic
def logged_model_finalize(*, actor: AbstractBaseUser, model_id: str, status: Any) -> LoggedModel:
    """Set a model's final status: READY (files uploaded) or UPLOAD_FAILED.

    Idempotent: finalizing with the status the model already has changes nothing (not even
    its last-updated time), so a retried request is harmless.
    """
    new_status = status_parse(status)
    if new_status not in FINAL_STATUSES:
        raise InvalidParameter(
            f"Invalid status {new_status.value!r} to finalize a logged model: expected "
            f"{LoggedModelStatus.READY.value} or {LoggedModelStatus.UPLOAD_FAILED.value}."
        )
    model = _model_for_write(actor, model_id)
    if model.status == new_status:
        return model
    model.status = new_status
    model.last_updated_timestamp_ms = now_ms()
    model.save(update_fields=["status", "last_updated_timestamp_ms"])
    return model


@transaction.atomic
def logged_model_delete(*, actor: AbstractBaseUser, model_id: str) -> LoggedModel:
    """Mark a logged model deleted. Its files stay (as a deleted run's do). Idempotent."""
    model = _model_for_write(actor, model_id, allow_deleted=True, action=permissions.MANAGE)
    if model.lifecycle_stage != LifecycleStage.DELETED:
        model.lifecycle_stage = LifecycleStage.DELETED
        model.last_updated_timestamp_ms = now_ms()
        model.save(update_fields=["lifecycle_stage", "last_updated_timestamp_ms"])
    return model


# ---------------------------------------------------------------- tags and params


@transaction.atomic
def logged_model_tags_set(*, actor: AbstractBaseUser, model_id: str, tags: list[dict] | None) -> LoggedModel:
    """Set (insert or overwrite) tags on a model."""
    tag_values = validate_tags(tags, limit=MAX_TAGS_PER_REQUEST)
    model = _model_for_write(actor, model_id)
    if tag_values:
        _tags_write(model, tag_values)
        _touch(model)
    return model


@transaction.atomic
def logged_model_tag_delete(*, actor: AbstractBaseUser, model_id: str, key: str) -> LoggedModel:
    model = _model_for_write(actor, model_id)
    deleted, _ = LoggedModelTag.objects.filter(model=model, key=key).delete()
    if not deleted:
        raise NotFound(f"No tag with key '{key}' found for logged model with ID '{model.pk}'.")
    _touch(model)
    return model


@transaction.atomic
def logged_model_params_log(*, actor: AbstractBaseUser, model_id: str, params: list[dict] | None) -> LoggedModel:
    """Add params to a model (the client sends those beyond the first 100 this way).

    Params are immutable: logging a key again with the same value is a no-op, with
    another value INVALID_PARAMETER_VALUE.
    """
    param_values = _params_validated(params)
    model = _model_for_write(actor, model_id)
    if param_values:
        _params_write(model, param_values)
        _touch(model)
    return model



# ---------------------------------------------------------------- files


def logged_model_artifact_path(model: LoggedModel, relative: str | None = None) -> str:
    """The artifact-proxy path (`<location>/models/<id>/artifacts[/<relative>]`) of a model's files.

    The artifact service resolves and authorizes it (tracking.services.artifacts); a
    model whose location is not in the portal's store has no files the portal can serve.
    """
    root = store_path(model.artifact_location)
    if not root:
        raise NotFound(f"The files of logged model '{model.pk}' are not in this server's artifact store.")
    relative = (relative or "").strip("/")
    return f"{root}/{relative}" if relative else root
