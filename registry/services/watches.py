"""Watching a registered model: its watchers are emailed when a change is applied to it
(registry.notifications). Anyone who may read the model may watch it."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from portal import permissions
from portal.errors import PermissionDenied
from registry import selectors
from registry.models import ModelWatch, RegisteredModel


def is_watching(user: AbstractBaseUser, model: RegisteredModel) -> bool:
    return permissions.is_active_user(user) and ModelWatch.objects.filter(user=user, registered_model=model).exists()


@transaction.atomic
def model_watch_set(*, actor: AbstractBaseUser, name: str, watching: bool) -> RegisteredModel:
    """Start or stop watching model `name`. Idempotent."""
    if not permissions.is_active_user(actor):
        raise PermissionDenied("Only a signed-in user can watch a model.")
    model = selectors.registered_model_get_for_user(actor, name)
    if watching:
        try:
            with transaction.atomic():
                ModelWatch.objects.get_or_create(user=actor, registered_model=model)
        except IntegrityError:  # watched a moment earlier by a concurrent call
            pass
    else:
        ModelWatch.objects.filter(user=actor, registered_model=model).delete()
    return model
