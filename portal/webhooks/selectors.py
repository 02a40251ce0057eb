"""Reads of webhooks and their deliveries, narrowed to what the user may see.

A global webhook is seen by superusers only; a webhook scoped to a registered model by its
MANAGE holders (and superusers). Everyone else is told it does not exist, whatever their
level on the model, so neither its URL nor its existence leaks.
"""

from __future__ import annotations

from django.db.models import QuerySet

from portal import permissions
from portal.errors import NotFound
from portal.models import Webhook, WebhookDelivery


def _registered_model_class():
    return Webhook._meta.get_field("registered_model").related_model


def not_found(webhook_id: object) -> NotFound:
    return NotFound(f"Webhook with ID {webhook_id} not found.")


def may_manage(user: permissions.User, webhook: Webhook) -> bool:
    """May `user` see and change `webhook`?"""
    if not permissions.is_active_user(user):
        return False
    if user.is_superuser:
        return True
    if webhook.scope != Webhook.Scope.REGISTERED_MODEL or webhook.registered_model is None:
        return False
    return permissions.can(user, permissions.MANAGE, webhook.registered_model)


def webhook_list_for_user(user: permissions.User) -> QuerySet:
    """The live webhooks `user` may see, newest first."""
    webhooks = Webhook.objects.live().select_related("registered_model", "creator").order_by("-id")
    if not permissions.is_active_user(user):
        return webhooks.none()
    if user.is_superuser:
        return webhooks
    managed = permissions.roots_where(user, permissions.MANAGE, _registered_model_class().objects.all())
    return webhooks.filter(scope=Webhook.Scope.REGISTERED_MODEL, registered_model__in=managed.values("pk"))


def webhook_get_for_user(
    user: permissions.User, webhook_id: str, *, include_deleted: bool = False, for_update: bool = False
) -> Webhook:
    """The webhook, if it is live (or `include_deleted`) and `user` may see it; else NotFound."""
    webhooks = Webhook.objects.select_related("registered_model", "creator")
    if for_update:
        webhooks = webhooks.select_for_update(of=("self",))
    webhook = webhooks.filter(webhook_id=str(webhook_id)).first() if isinstance(webhook_id, str) else None
    if webhook is None or not may_manage(user, webhook):
        raise not_found(webhook_id)
    live = webhook.deleted_timestamp is None and (
        webhook.scope == Webhook.Scope.GLOBAL or webhook.registered_model_id is not None
    )
    if not live and not include_deleted:
        raise not_found(webhook_id)
    return webhook


def webhook_deliveries_for_user(user: permissions.User, webhook_id: str) -> QuerySet:
    """The deliveries of a webhook `user` may see (deleted webhooks' too), newest first."""
    webhook = webhook_get_for_user(user, webhook_id, include_deleted=True)
    return WebhookDelivery.objects.filter(webhook=webhook).order_by("-id")
