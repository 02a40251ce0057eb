"""Registry services: every change to registered models, versions, aliases and comments.

Access (portal.permissions): any signed-in user may create a registered model and gets
MANAGE on it. Changing a model, its tags, its aliases, its versions (stages, descriptions,
tags) and creating versions need EDIT on the registered model; deleting the model or a
version needs MANAGE. Comments need READ; only their author may edit them, and their
author or a superuser may delete them.

Locking: a service that changes a model or its versions locks the registered model row
first (selectors.registered_model_lock_for_user), then version rows. Version numbers come
from a counter on the locked model row, so concurrent registrations get distinct,
consecutive numbers; the (model, version) unique constraint is the backstop. On SQLite the
portal's transactions are IMMEDIATE, which serialises writers instead.

`model_version_transition_stage` and `alias_set` are the single entry points for stage and
alias changes; the approval workflow wraps them.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal import permissions
from portal.errors import AlreadyExists, Conflict, InvalidParameter, PermissionDenied
from registry import selectors, sources, validation
from registry.models import (
    ACTIVE_STAGES,
    ALLOWED_TRANSITIONS,
    Comment,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
    Stage,
    StageTransition,
)
from tracking.validation import now_ms


def _already_exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"Registered Model (name={name}) already exists.")


def _model_for_write(actor: AbstractBaseUser, name: str, action: str = permissions.EDIT) -> RegisteredModel:
    """The model row, locked, after checking that `actor` may do `action` (EDIT by default) on it."""
    model = selectors.registered_model_lock_for_user(actor, name)
    permissions.require(actor, action, model)
    return model


def _touch(model: RegisteredModel, now: int | None = None) -> None:
    model.last_updated_timestamp = now or now_ms()
    RegisteredModel.objects.filter(pk=model.pk).update(last_updated_timestamp=model.last_updated_timestamp)


# ---------------------------------------------------------------- registered models


@transaction.atomic
def registered_model_create(
    *, actor: AbstractBaseUser, name: str, description: str | None = None, tags: list[dict] | None = None
) -> RegisteredModel:
    """Create a registered model owned by `actor`, who gets every grant on it.

    A taken name is RESOURCE_ALREADY_EXISTS, also when another request took it a moment
    earlier (the unique constraint decides); the client relies on that to carry on.
    """
    if not permissions.is_active_user(actor):
        raise InvalidParameter("Only a signed-in user can create registered models.")
    name = validation.model_name_validated(name)
    description = validation.description_validated(description)
    tag_values = validation.tags_validated(tags)
    if RegisteredModel.objects.filter(name=name).exists():
        raise _already_exists(name)
    now = now_ms()
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                name=name, description=description, owner=actor, creation_timestamp=now, last_updated_timestamp=now
            )
    except IntegrityError:
        raise _already_exists(name) from None
    RegisteredModelTag.objects.bulk_create(
        [RegisteredModelTag(registered_model=model, key=k, value=v) for k, v in tag_values.items()]
    )
    permissions.grant_owner(model, actor)
    return model


@transaction.atomic
def registered_model_rename(*, actor: AbstractBaseUser, name: str, new_name: str) -> RegisteredModel:
    """Rename a model. Versions, aliases, tags, history and comments hang on the model's id,
    so they follow the new name. Renaming to the current name changes nothing."""
    model = _model_for_write(actor, name)
    new_name = validation.model_name_validated(new_name, "new_name")
    if new_name == model.name:
        return model
    if RegisteredModel.objects.filter(name=new_name).exists():
        raise _already_exists(new_name)
    model.name = new_name
    model.last_updated_timestamp = now_ms()
    try:
        with transaction.atomic():
            model.save(update_fields=["name", "last_updated_timestamp"])
    except IntegrityError:
        raise _already_exists(new_name) from None
    return model


@transaction.atomic
def registered_model_update(*, actor: AbstractBaseUser, name: str, description: str | None) -> RegisteredModel:
    """Set the model's Markdown description."""
    model = _model_for_write(actor, name)
    model.description = validation.description_validated(description)
    model.last_updated_timestamp = now_ms()
    model.save(update_fields=["description", "last_updated_timestamp"])
    return model


@transaction.atomic
def registered_model_delete(*, actor: AbstractBaseUser, name: str) -> None:
    """Delete a model with its versions, tags, aliases, history, comments and grants.

    Not idempotent, as MLflow's is not: deleting a missing model is RESOURCE_DOES_NOT_EXIST.
    """
    model = _model_for_write(actor, name, permissions.MANAGE)
    model.delete()


@transaction.atomic
def registered_model_tag_set(*, actor: AbstractBaseUser, name: str, key: str, value: str | None) -> RegisteredModel:
    key, value = validation.tag_validated(key, value)
    model = _model_for_write(actor, name)
    RegisteredModelTag.objects.update_or_create(registered_model=model, key=key, defaults={"value": value})
    return model


@transaction.atomic
def registered_model_tag_delete(*, actor: AbstractBaseUser, name: str, key: str) -> RegisteredModel:
    """Remove a tag. A tag that is not there is not an error (retries are harmless)."""
    model = _model_for_write(actor, name)
    RegisteredModelTag.objects.filter(registered_model=model, key=key).delete()
    return model


# ---------------------------------------------------------------- versions


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
    found.description = validation.description_validated(description)
    found.last_updated_timestamp = now_ms()
    found.save(update_fields=["description", "last_updated_timestamp"])
    return found


@transaction.atomic
def model_version_delete(*, actor: AbstractBaseUser, name: str, version: int | str) -> None:
    """Delete a version and the aliases that point at it; its number is never given out again.

    Needs MANAGE on the model, as in MLflow: removing a version can take a stage or an
    alias away from everyone who deploys the model. Its stage history stays with the model.
    """
    model = _model_for_write(actor, name, permissions.MANAGE)
    found = selectors.model_version_lock(model, version)
    found.delete()
    _touch(model)


@transaction.atomic
def model_version_tag_set(
    *, actor: AbstractBaseUser, name: str, version: int | str, key: str, value: str | None
) -> ModelVersion:
    key, value = validation.tag_validated(key, value)
    found = _version_for_write(actor, name, version)
    ModelVersionTag.objects.update_or_create(model_version=found, key=key, defaults={"value": value})
    return found


@transaction.atomic
def model_version_tag_delete(*, actor: AbstractBaseUser, name: str, version: int | str, key: str) -> ModelVersion:
    """Remove a tag. A tag that is not there is not an error (retries are harmless)."""
    found = _version_for_write(actor, name, version)
    ModelVersionTag.objects.filter(model_version=found, key=key).delete()
    return found


@transaction.atomic
def model_version_transition_stage(
    *,
    actor: AbstractBaseUser,
    name: str,
    version: int | str,
    stage: str,
    archive_existing_versions: bool = False,
) -> ModelVersion:
    """Move a version to `stage`; with `archive_existing_versions`, archive the model's other
    versions in that stage, in the same transaction.

    Preconditions: `actor` may edit the model; archiving is only for Staging and Production.
    Every version whose stage changes gets a StageTransition row. Idempotent: a version
    already in `stage` is not moved again and gets no new row (the others are still
    archived if asked, so the call's outcome is the same however often it is made).
    """
    to_stage = validation.stage_parse(stage)
    if archive_existing_versions and to_stage not in ACTIVE_STAGES:
        raise InvalidParameter(
            f"Model version transition cannot archive existing model versions because '{to_stage}' is not an "
            f"active stage. Valid stages are {', '.join(ACTIVE_STAGES)}."
        )
    model = _model_for_write(actor, name)
    found = selectors.model_version_lock(model, version)
    now = now_ms()
    transitions: list[StageTransition] = []
    if found.current_stage != to_stage:
        if to_stage not in ALLOWED_TRANSITIONS[found.current_stage]:
            raise Conflict(f"Cannot move {found} from {found.current_stage} to {to_stage}.")
        transitions.append(
            StageTransition(
                registered_model=model,
                model_version=found,
                version_number=found.version,
                from_stage=found.current_stage,
                to_stage=to_stage,
                actor=actor,
                timestamp=now,
            )
        )
        found.current_stage = to_stage
        found.last_updated_timestamp = now
        found.save(update_fields=["current_stage", "last_updated_timestamp"])
    if archive_existing_versions:
        others = list(
            ModelVersion.objects.select_for_update()
            .filter(registered_model=model, current_stage=to_stage)
            .exclude(pk=found.pk)
            .order_by("version")
        )
        for other in others:
            transitions.append(
                StageTransition(
                    registered_model=model,
                    model_version=other,
                    version_number=other.version,
                    from_stage=to_stage,
                    to_stage=Stage.ARCHIVED,
                    actor=actor,
                    timestamp=now,
                    reason=f"archived when version {found.version} moved to {to_stage}",
                )
            )
        ModelVersion.objects.filter(pk__in=[o.pk for o in others]).update(
            current_stage=Stage.ARCHIVED, last_updated_timestamp=now
        )
    if transitions:
        StageTransition.objects.bulk_create(transitions)
        _touch(model, now)
    return found


# ---------------------------------------------------------------- aliases


@transaction.atomic
def alias_set(*, actor: AbstractBaseUser, name: str, alias: str, version: int | str) -> ModelAlias:
    """Point `alias` of model `name` at `version`, moving it if it pointed elsewhere.

    Preconditions: `actor` may edit the model; the version exists. Idempotent.
    """
    alias = validation.alias_validated(alias)
    model = _model_for_write(actor, name)
    found = selectors.model_version_lock(model, version)
    existing = ModelAlias.objects.filter(registered_model=model, alias=alias).first()
    if existing is None:
        return ModelAlias.objects.create(registered_model=model, alias=alias, model_version=found)
    if existing.model_version_id != found.pk:
        existing.model_version = found
        existing.save(update_fields=["model_version"])
    return existing


@transaction.atomic
def alias_delete(*, actor: AbstractBaseUser, name: str, alias: str) -> RegisteredModel:
    """Remove an alias. An alias that is not there is not an error (retries are harmless)."""
    model = _model_for_write(actor, name)
    ModelAlias.objects.filter(registered_model=model, alias=alias).delete()
    return model


# ---------------------------------------------------------------- comments


@transaction.atomic
def comment_add(*, actor: AbstractBaseUser, name: str, version: int | str | None = None, text: str) -> Comment:
    """Comment on a model, or on one of its versions. Anyone who may read the model may comment."""
    text = validation.comment_text_validated(text)
    if not permissions.is_active_user(actor):
        raise PermissionDenied("Only a signed-in user can comment.")
    model = selectors.registered_model_get_for_user(actor, name)
    target = selectors.model_version_get_for_user(actor, name, version) if version is not None else None
    now = timezone.now()
    return Comment.objects.create(
        registered_model=model, model_version=target, author=actor, text=text, created_at=now, updated_at=now
    )


def _comment_for_write(actor: AbstractBaseUser, comment_id: int) -> Comment:
    comment = selectors.comment_get_for_user(actor, comment_id)
    return Comment.objects.select_for_update().get(pk=comment.pk)


@transaction.atomic
def comment_edit(*, actor: AbstractBaseUser, comment_id: int, text: str) -> Comment:
    """Replace a comment's text. Only its author may: nobody puts words in someone else's mouth."""
    text = validation.comment_text_validated(text)
    comment = _comment_for_write(actor, comment_id)
    if comment.author_id is None or comment.author_id != actor.pk:
        raise PermissionDenied("Only the author of a comment may edit it.")
    if comment.text != text:
        comment.text = text
        comment.updated_at = timezone.now()
        comment.save(update_fields=["text", "updated_at"])
    return comment


@transaction.atomic
def comment_delete(*, actor: AbstractBaseUser, comment_id: int) -> None:
    """Delete a comment: its author may, and so may a superuser (moderation)."""
    comment = _comment_for_write(actor, comment_id)
    if not (actor.is_superuser or (comment.author_id is not None and comment.author_id == actor.pk)):
        raise PermissionDenied("Only the author of a comment (or an administrator) may delete it.")
    comment.delete()



@transaction.atomic
def registered_model_set_private(*, actor: AbstractBaseUser, name: str, private: bool) -> RegisteredModel:
    """Make a registered model private (no access for signed-in users without a grant,
    whatever PORTAL_DEFAULT_PERMISSION says) or not. Needs MANAGE: it decides who sees it."""
    model = _model_for_write(actor, name, permissions.MANAGE)
    if model.private != private:
        model.private = private
        model.save(update_fields=["private"])
    return model
