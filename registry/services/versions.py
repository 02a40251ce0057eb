"""Model versions: register, describe, tag, delete."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from portal import permissions
from registry import events, selectors, sources, validation
from registry.models import ModelVersion, ModelVersionTag, RegisteredModel
from registry.services import policies, requests
from registry.services._common import audit_version, model_for_write, touch
from tracking.validation import now_ms


@transaction.atomic
def model_version_create(
    *,
    actor: AbstractBaseUser,
    name: str,
    source: str,
    run_id: str | None = None,
    model_id: str | None = None,
    tags: list[dict] | None = None,
    description: str | None = None,
    run_link: str | None = None,
) -> ModelVersion:
    """Register `source` as the next version of model `name`.

    Preconditions: `actor` may edit the model and read the source (see registry.sources
    for the accepted forms; a prompt version has no files). The version number is the
    model's counter plus one, taken while holding the model row's lock: numbers start at
    1, are never reused, and concurrent registrations get distinct, consecutive numbers. The version is READY at
    once (no files are copied). Not idempotent: each call makes a new version.
    """
    tag_values = validation.tags_validated(tags)
    description = validation.description_validated(description)
    run_link = validation.run_link_validated(run_link)
    model = selectors.registered_model_get_for_user(actor, name)
    permissions.require(actor, permissions.EDIT, model)
    resolved = sources.version_source_resolve(
        user=actor, registered_model=model, source=source, run_id=run_id, model_id=model_id, version_tags=tag_values
    )
    # Lock by id: the name may have changed since (a rename does not stop a registration).
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    number = model.last_version_number + 1
    now = now_ms()
    RegisteredModel.objects.filter(pk=model.pk).update(last_version_number=number, last_updated_timestamp=now)
    model.last_version_number, model.last_updated_timestamp = number, now
    version = ModelVersion.objects.create(
        registered_model=model,
        version=number,
        owner=actor,
        source=source,
        storage_location=resolved.storage_location,
        run=resolved.run,
        logged_model=resolved.logged_model,
        run_link=run_link,
        description=description,
        creation_timestamp=now,
        last_updated_timestamp=now,
    )
    ModelVersionTag.objects.bulk_create(
        [ModelVersionTag(model_version=version, key=k, value=v) for k, v in tag_values.items()]
    )
    audit_version(actor, "model_version.created", version, after={"source": source, "run_id": version.run_id})
    events.model_version_created(version, tag_values)
    return version


def _version_for_write(actor: AbstractBaseUser, name: str, version: int | str) -> ModelVersion:
    """A version the actor may edit (an editor of its model), row locked."""
    model = selectors.registered_model_lock_for_user(actor, name)
    found = selectors.model_version_lock(model, version)
    permissions.require(actor, permissions.EDIT, found)
    return found


@transaction.atomic
def model_version_update(
    *, actor: AbstractBaseUser, name: str, version: int | str, description: str | None
) -> ModelVersion:
    """Set the version's Markdown description."""
    found = _version_for_write(actor, name, version)
    before = found.description
    found.description = validation.description_validated(description)
    found.last_updated_timestamp = now_ms()
    found.save(update_fields=["description", "last_updated_timestamp"])
    if before != found.description:
        audit_version(
            actor, "model_version.description_changed", found,
            before={"description": before}, after={"description": found.description},
        )
    return found


@transaction.atomic
def model_version_delete(*, actor: AbstractBaseUser, name: str, version: int | str) -> None:
    """Delete a version and the aliases that point at it; its number is never given out again.

    Needs MANAGE on the model, as in MLflow: removing a version can take a stage or an
    alias away from everyone who deploys the model. A version holding a protected stage or
    alias is refused (release the target first). Its open transition requests are
    superseded; its stage history stays with the model.
    """
    model = model_for_write(actor, name, permissions.MANAGE)
    found = selectors.model_version_lock(model, version)
    policies.require_no_protected_target(model, "delete", version=found)
    requests.supersede_open_requests_of_version(found, actor=actor)
    audit_version(actor, "model_version.deleted", found, before={"stage": found.current_stage})
    found.delete()
    touch(model)


@transaction.atomic
def model_version_tag_set(
    *, actor: AbstractBaseUser, name: str, version: int | str, key: str, value: str | None
) -> ModelVersion:
    key, value = validation.tag_validated(key, value)
    found = _version_for_write(actor, name, version)
    ModelVersionTag.objects.update_or_create(model_version=found, key=key, defaults={"value": value})
    events.model_version_tag_set(found, key, value)
    return found


@transaction.atomic
def model_version_tag_delete(*, actor: AbstractBaseUser, name: str, version: int | str, key: str) -> ModelVersion:
    """Remove a tag. A tag that is not there is not an error (retries are harmless)."""
    found = _version_for_write(actor, name, version)
    deleted, _ = ModelVersionTag.objects.filter(model_version=found, key=key).delete()
    if deleted:
        events.model_version_tag_deleted(found, key)
    return found
