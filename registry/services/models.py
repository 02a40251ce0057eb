"""Registered models: create, rename, describe, tag, make private, delete."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from portal import permissions
from portal.errors import InvalidParameter
from registry import events, validation
from registry.models import RegisteredModel, RegisteredModelTag
from registry.services import policies
from registry.services._common import already_exists, audit_model, model_for_write
from tracking.validation import now_ms


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
        raise already_exists(name)
    now = now_ms()
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                name=name, description=description, owner=actor, creation_timestamp=now, last_updated_timestamp=now
            )
    except IntegrityError:
        raise already_exists(name) from None
    RegisteredModelTag.objects.bulk_create(
        [RegisteredModelTag(registered_model=model, key=k, value=v) for k, v in tag_values.items()]
    )
    permissions.grant_owner(model, actor)
    audit_model(actor, "registered_model.created", model, after={"name": name})
    events.registered_model_created(model, tag_values)
    return model


@transaction.atomic
def registered_model_rename(*, actor: AbstractBaseUser, name: str, new_name: str) -> RegisteredModel:
    """Rename a model. Versions, aliases, tags, history and comments hang on the model's id,
    so they follow the new name. Renaming to the current name changes nothing.

    A model holding a protected stage or alias is not renamed: `models:/name/Production`
    would stop resolving for everyone who deploys it (policies.require_no_protected_target)."""
    model = model_for_write(actor, name)
    new_name = validation.model_name_validated(new_name, "new_name")
    if new_name == model.name:
        return model
    policies.require_no_protected_target(model, "rename")
    if RegisteredModel.objects.filter(name=new_name).exists():
        raise already_exists(new_name)
    old_name = model.name
    model.name = new_name
    model.last_updated_timestamp = now_ms()
    try:
        with transaction.atomic():
            model.save(update_fields=["name", "last_updated_timestamp"])
    except IntegrityError:
        raise already_exists(new_name) from None
    audit_model(actor, "registered_model.renamed", model, before={"name": old_name}, after={"name": new_name})
    return model


@transaction.atomic
def registered_model_update(*, actor: AbstractBaseUser, name: str, description: str | None) -> RegisteredModel:
    """Set the model's Markdown description."""
    model = model_for_write(actor, name)
    before = model.description
    model.description = validation.description_validated(description)
    model.last_updated_timestamp = now_ms()
    model.save(update_fields=["description", "last_updated_timestamp"])
    if before != model.description:
        audit_model(
            actor, "registered_model.description_changed", model,
            before={"description": before}, after={"description": model.description},
        )
    return model


@transaction.atomic
def registered_model_delete(*, actor: AbstractBaseUser, name: str) -> None:
    """Delete a model with its versions, tags, aliases, history, comments and grants.

    Not idempotent, as MLflow's is not: deleting a missing model is RESOURCE_DOES_NOT_EXIST.
    A model holding a protected stage or alias is refused (release the target first).
    """
    model = model_for_write(actor, name, permissions.MANAGE)
    policies.require_no_protected_target(model, "delete")
    audit_model(actor, "registered_model.deleted", model, before={"name": model.name})
    model.delete()


@transaction.atomic
def registered_model_tag_set(*, actor: AbstractBaseUser, name: str, key: str, value: str | None) -> RegisteredModel:
    key, value = validation.tag_validated(key, value)
    model = model_for_write(actor, name)
    RegisteredModelTag.objects.update_or_create(registered_model=model, key=key, defaults={"value": value})
    return model


@transaction.atomic
def registered_model_tag_delete(*, actor: AbstractBaseUser, name: str, key: str) -> RegisteredModel:
    """Remove a tag. A tag that is not there is not an error (retries are harmless)."""
    model = model_for_write(actor, name)
    RegisteredModelTag.objects.filter(registered_model=model, key=key).delete()
    return model


@transaction.atomic
def registered_model_set_private(*, actor: AbstractBaseUser, name: str, private: bool) -> RegisteredModel:
    """Make a registered model private (no access for signed-in users without a grant,
    whatever PORTAL_DEFAULT_PERMISSION says) or not. Needs MANAGE: it decides who sees it."""
    model = model_for_write(actor, name, permissions.MANAGE)
    if model.private != private:
        model.private = private
        model.save(update_fields=["private"])
        audit_model(actor, "registered_model.private_changed", model, before={"private": not private},
                    after={"private": private})
    return model
