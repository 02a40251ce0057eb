"""The audit log: `record()` writes one AuditEvent in the caller's transaction.

Services call it for every governance change (users, teams, memberships, grants, tokens,
policies, transition requests and their decisions, applies and bypasses, stage and alias
changes, webhooks), inside the same `transaction.atomic` as the change, so the event and the
change commit or roll back together. Tracking data (metrics, params, tags) is not audited.

The HTTP request behind a change (its id and client address) is known to the middleware,
not to the services: AuditContextMiddleware puts it in a context variable for the duration
of the request, and `record()` reads it. Tasks and management commands have none.
"""

import contextvars
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Model
from django.utils import timezone

from portal.models import AuditEvent


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    client_address: str | None


_request_context: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "portal_audit_request", default=None
)

# X-Request-ID is taken from the client or the load balancer when it looks like an id.
_REQUEST_ID_MAX = 64


def request_context_from(request) -> RequestContext:
    given = (request.META.get("HTTP_X_REQUEST_ID") or "").strip()
    request_id = given if given and len(given) <= _REQUEST_ID_MAX and given.isprintable() else uuid.uuid4().hex
    return RequestContext(request_id=request_id, client_address=request.META.get("REMOTE_ADDR") or None)


def request_context_set(context: RequestContext | None) -> contextvars.Token:
    return _request_context.set(context)


def request_context_reset(token: contextvars.Token) -> None:
    _request_context.reset(token)


def current_request_context() -> RequestContext | None:
    return _request_context.get()


def _actor_fields(actor: AbstractBaseUser | None) -> dict[str, Any]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"actor_id": None, "actor_username": ""}
    return {"actor_id": actor.pk, "actor_username": actor.get_username()}


def resource_of(obj: Model | None) -> tuple[str, str]:
    """The guarded root an object belongs to, as (resource type, id), or ("", "")."""
    if obj is None:
        return "", ""
    root = getattr(obj, "guarded_root", None)
    resource_type = getattr(root, "access_resource_type", "") if root is not None else ""
    return (resource_type, str(root.pk)) if resource_type else ("", "")


def record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    object_type: str,
    object_id: Any,
    object_name: str = "",
    before: dict | None = None,
    after: dict | None = None,
    resource: Model | None = None,
) -> AuditEvent:
    """Append one event. `resource` is the object (or its guarded root) whose MANAGE holders
    may read the event; `before`/`after` are JSON-able snapshots of what changed."""
    context = _request_context.get()
    resource_type, resource_id = resource_of(resource)
    return AuditEvent.objects.create(
        timestamp=timezone.now(),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_name=str(object_name)[:500],
        resource_type=resource_type,
        resource_id=resource_id,
        before=before,
        after=after,
        request_id=context.request_id if context else "",
        client_address=context.client_address if context else None,
        **_actor_fields(actor),
    )
