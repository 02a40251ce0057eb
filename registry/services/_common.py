"""What the registry services share: the locked, checked model row, and audit snapshots."""

from django.contrib.auth.models import AbstractBaseUser

from portal import audit, permissions
from portal.errors import AlreadyExists
from registry import selectors
from registry.models import ModelVersion, RegisteredModel
from tracking.validation import now_ms


def already_exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"Registered Model (name={name}) already exists.")


def model_for_write(actor: AbstractBaseUser, name: str, action: str = permissions.EDIT) -> RegisteredModel:
    """The model row, locked, after checking that `actor` may do `action` (EDIT by default) on it."""
    model = selectors.registered_model_lock_for_user(actor, name)
    permissions.require(actor, action, model)
    return model


def model_lock(model_id: int) -> RegisteredModel:
    """The model row by id, locked (a task acts for nobody, so there is no check)."""
    return RegisteredModel.objects.select_for_update().get(pk=model_id)


def touch(model: RegisteredModel, now: int | None = None) -> None:
    model.last_updated_timestamp = now or now_ms()
    RegisteredModel.objects.filter(pk=model.pk).update(last_updated_timestamp=model.last_updated_timestamp)


def audit_model(actor: AbstractBaseUser | None, action: str, model: RegisteredModel, **snapshots) -> None:
    audit.record(
        actor=actor,
        action=action,
        object_type="registered_model",
        object_id=model.pk,
        object_name=model.name,
        resource=model,
        **snapshots,
    )


def audit_version(actor: AbstractBaseUser | None, action: str, version: ModelVersion, **snapshots) -> None:
    audit.record(
        actor=actor,
        action=action,
        object_type="model_version",
        object_id=version.pk,
        object_name=f"{version.registered_model.name} version {version.version}",
        resource=version.registered_model,
        **snapshots,
    )
