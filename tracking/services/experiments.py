"""Experiment services: every state change of an experiment goes through here."""

import re
import urllib.parse

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from portal import permissions
from portal.errors import AlreadyExists, InvalidParameter
from tracking.models import Experiment, ExperimentTag, LifecycleStage, Run
from tracking.paths import ARTIFACT_SCHEME
from tracking.selectors import experiment_get_for_user, experiment_lock_for_user
from tracking.validation import (
    MAX_EXPERIMENT_TAG_VAL_LENGTH,
    normalize_experiment_name,
    now_ms,
    validate_tag,
    validate_tags,
)

_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._\-]+$")
# Segments the portal gives meaning to: experiment ids (first segment), run ids, logged
# model ids. A custom location must not look like another object's folder.
_RESERVED_SEGMENT = re.compile(r"^(?:[0-9]+|[0-9a-f]{32}|m-[0-9a-f]{32})$")
# Experiment.artifact_location, Run.artifact_uri and LoggedModel.artifact_location hold at
# most 1000 characters, and the last two append to the experiment's location: a run
# "/<run id>/artifacts", a logged model "/models/m-<32 hex>/artifacts", the longer (52).
MAX_ARTIFACT_LOCATION_LENGTH = 1000 - len("/models/m-" + "0" * 32 + "/artifacts")


def artifact_location_parse(uri: str) -> str:
    """Validate a user-given artifact location and return it in canonical form.

    Only the portal's own proxied store is allowed (`mlflow-artifacts:/<path>`), with no
    host (a host would send clients' uploads elsewhere) and a plain relative path: no
    traversal, no encoded characters, no query or fragment.
    """
    original = uri
    if any(ch in uri for ch in ("\\", "\0", "%", ";", "#", "?")):
        raise InvalidParameter(f"Invalid artifact location {original!r}: illegal character.")
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != ARTIFACT_SCHEME:
        raise InvalidParameter(
            f"Invalid artifact location {original!r}: only '{ARTIFACT_SCHEME}:/<path>' locations inside the "
            "portal's artifact store are allowed."
        )
    if parsed.netloc:
        raise InvalidParameter(f"Invalid artifact location {original!r}: a host is not allowed.")
    segments = [s for s in parsed.path.split("/") if s]
    if not segments or any(s in (".", "..") or not _SAFE_SEGMENT.match(s) for s in segments):
        raise InvalidParameter(f"Invalid artifact location {original!r}: the path must be a plain relative path.")
    if _RESERVED_SEGMENT.match(segments[0]) or any(_RESERVED_SEGMENT.match(s) for s in segments if not s.isdigit()):
        raise InvalidParameter(
            f"Invalid artifact location {original!r}: it must not start with a number or contain run or model ids, "
            "which name folders the portal manages."
        )
    location = f"{ARTIFACT_SCHEME}:/" + "/".join(segments)
    if len(location) > MAX_ARTIFACT_LOCATION_LENGTH:
        raise InvalidParameter(
            f"Invalid artifact location {original[:100]!r}...: it had length {len(location)}, which exceeded "
            f"length limit of {MAX_ARTIFACT_LOCATION_LENGTH}."
        )
    return location


def _already_exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"Experiment(name={name}) already exists.")


@transaction.atomic
def experiment_create(
    *, actor: AbstractBaseUser, name: str, artifact_location: str | None = None, tags: list[dict] | None = None
) -> Experiment:
    """Create an experiment owned by `actor`, who gets every grant on it."""
    if not permissions.is_active_user(actor):
        raise InvalidParameter("Only a signed-in user can create experiments.")
    name = normalize_experiment_name(name)
    tag_values = validate_tags(tags, max_value_length=MAX_EXPERIMENT_TAG_VAL_LENGTH)
    location = artifact_location_parse(artifact_location) if artifact_location else None
    if Experiment.objects.filter(name=name).exists():
        raise _already_exists(name)
    now = now_ms()
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                name=name, artifact_location=location or "", owner=actor, creation_time=now, last_update_time=now
            )
    except IntegrityError:
        raise _already_exists(name) from None
    if not location:
        experiment.artifact_location = f"{ARTIFACT_SCHEME}:/{experiment.pk}"
        Experiment.objects.filter(pk=experiment.pk).update(artifact_location=experiment.artifact_location)
    ExperimentTag.objects.bulk_create(
        [ExperimentTag(experiment=experiment, key=k, value=v) for k, v in tag_values.items()]
    )
    permissions.grant_owner(experiment, actor)
    return experiment


@transaction.atomic
def experiment_rename(*, actor: AbstractBaseUser, experiment_id: str, new_name: str) -> Experiment:
    experiment = experiment_lock_for_user(actor, experiment_id)
    permissions.require(actor, permissions.EDIT, experiment)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter("Cannot rename a non-active experiment.")
    name = normalize_experiment_name(new_name)
    if name == experiment.name:
        return experiment
    if Experiment.objects.filter(name=name).exclude(pk=experiment.pk).exists():
        raise _already_exists(name)
    experiment.name = name
    experiment.last_update_time = now_ms()
    try:
        with transaction.atomic():
            experiment.save(update_fields=["name", "last_update_time"])
    except IntegrityError:
        raise _already_exists(name) from None
    return experiment


@transaction.atomic
def experiment_delete(*, actor: AbstractBaseUser, experiment_id: str) -> Experiment:
    """Mark the experiment and its runs deleted (restorable). Idempotent."""
    experiment = experiment_lock_for_user(actor, experiment_id)
    if experiment.pk == Experiment.DEFAULT_ID:
        raise InvalidParameter("Cannot delete the default experiment '0'. This is an internally reserved experiment.")
    permissions.require(actor, permissions.MANAGE, experiment)
    if experiment.lifecycle_stage == LifecycleStage.DELETED:
        return experiment
    now = now_ms()
    experiment.lifecycle_stage = LifecycleStage.DELETED
    experiment.deleted_time = now
    experiment.last_update_time = now
    experiment.save(update_fields=["lifecycle_stage", "deleted_time", "last_update_time"])
    Run.objects.filter(experiment=experiment, lifecycle_stage=LifecycleStage.ACTIVE).update(
        lifecycle_stage=LifecycleStage.DELETED, deleted_time=now
    )
    return experiment


@transaction.atomic
def experiment_restore(*, actor: AbstractBaseUser, experiment_id: str) -> Experiment:
    """Bring back a deleted experiment and the runs deleted with it. Idempotent."""
    experiment = experiment_lock_for_user(actor, experiment_id)
    permissions.require(actor, permissions.MANAGE, experiment)
    if experiment.lifecycle_stage == LifecycleStage.ACTIVE:
        return experiment
    Run.objects.filter(
        experiment=experiment, lifecycle_stage=LifecycleStage.DELETED, deleted_time=experiment.deleted_time
    ).update(lifecycle_stage=LifecycleStage.ACTIVE, deleted_time=None)
    experiment.lifecycle_stage = LifecycleStage.ACTIVE
    experiment.deleted_time = None
    experiment.last_update_time = now_ms()
    experiment.save(update_fields=["lifecycle_stage", "deleted_time", "last_update_time"])
    return experiment


@transaction.atomic
def experiment_tag_set(*, actor: AbstractBaseUser, experiment_id: str, key: str, value: str) -> Experiment:
    experiment = experiment_get_for_user(actor, experiment_id)
    permissions.require(actor, permissions.EDIT, experiment)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter(f"The experiment {experiment.pk} must be in the 'active' state. Current state is deleted.")
    key, value = validate_tag(key, value, max_value_length=MAX_EXPERIMENT_TAG_VAL_LENGTH)
    ExperimentTag.objects.update_or_create(experiment=experiment, key=key, defaults={"value": value})
    Experiment.objects.filter(pk=experiment.pk).update(last_update_time=now_ms())
    return experiment


@transaction.atomic
def experiment_tag_delete(*, actor: AbstractBaseUser, experiment_id: str, key: str) -> Experiment:
    from portal.errors import NotFound

    experiment = experiment_get_for_user(actor, experiment_id)
    permissions.require(actor, permissions.EDIT, experiment)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter(f"The experiment {experiment.pk} must be in the 'active' state. Current state is deleted.")
    deleted, _ = ExperimentTag.objects.filter(experiment=experiment, key=key).delete()
    if not deleted:
        raise NotFound(f"No tag with name: {key} in experiment with id {experiment.pk}")
    Experiment.objects.filter(pk=experiment.pk).update(last_update_time=now_ms())
    return experiment


@transaction.atomic
def experiment_set_private(*, actor: AbstractBaseUser, experiment_id: str, private: bool) -> Experiment:
    """Make an experiment private (no access for signed-in users without a grant, whatever
    PORTAL_DEFAULT_PERMISSION says) or not. Needs MANAGE: it decides who sees it."""
    experiment = experiment_lock_for_user(actor, experiment_id)
    permissions.require(actor, permissions.MANAGE, experiment)
    if experiment.pk == Experiment.DEFAULT_ID and private:
        raise InvalidParameter("The Default experiment takes runs from everyone; it cannot be made private.")
    if experiment.private != private:
        experiment.private = private
        experiment.save(update_fields=["private"])
    return experiment
