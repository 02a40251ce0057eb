"""The access module: the one place that answers "may user U do action A on object O".

Only root objects carry grants: tracking.Experiment and registry.RegisteredModel. Every
other object names its root through a `guarded_root` property (a Run's is its
experiment) and is judged by it.

The rule in force now (the full per-object model comes with teams):
- anonymous and inactive users may do nothing;
- superusers may do everything;
- every signed-in user may read;
- the owner of the root may edit and manage it, and so may anyone holding a guardian
  grant of the matching codename on the root (grants are written by grant_owner now and
  by the sharing features later);
- whoever created a child object (a run, a logged model, a version) may edit it;
- the system-owned Default experiment (no owner) accepts new runs from every signed-in
  user, as MLflow's does.

Services call `require` and `can`; selectors call `visible`. Doors never decide access.
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, QuerySet
from guardian.utils import get_user_obj_perms_model

from portal.errors import NotFound, PermissionDenied

READ = "read"
EDIT = "edit"
MANAGE = "manage"
APPROVE = "approve"
ACTIONS = (READ, EDIT, MANAGE, APPROVE)

User = AbstractBaseUser | AnonymousUser

# action -> codename suffix; the app label and model name come from the root's class.
_CODENAMES = {READ: "view", EDIT: "change", MANAGE: "manage"}
_EXTRA_CODENAMES = {("registry", "registeredmodel", APPROVE): "registry.approve_transition"}


def _codename(root: Model, action: str) -> str:
    meta = root._meta
    extra = _EXTRA_CODENAMES.get((meta.app_label, meta.model_name, action))
    if extra:
        return extra
    return f"{meta.app_label}.{_CODENAMES[action]}_{meta.model_name}"


def is_active_user(user: User) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def can(user: User, action: str, obj: Any) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not is_active_user(user):
        return False
    if user.is_superuser:
        return True
    if action == READ:
        return True
    root = obj.guarded_root
    if root.owner_id is not None and root.owner_id == user.pk:
        return True
    if action == EDIT and obj is not root and getattr(obj, "owner_id", None) == user.pk:
        return True
    return user.has_perm(_codename(root, action), root)


def can_add_child(user: User, parent: Any) -> bool:
    """May `user` create objects (runs, logged models, versions) under `parent`?"""
    if not is_active_user(user):
        return False
    root = parent.guarded_root
    if root.owner_id is None and getattr(root, "is_open_to_all", False):
        return True
    return can(user, EDIT, parent)


def require(user: User, action: str, obj: Any, *, not_found: str = "Resource does not exist.") -> None:
    """Raise unless `user` may do `action` on `obj`.

    A user who may not even read the object gets NotFound (with the same message as a
    missing object, so nothing leaks); one who may read but not act gets PermissionDenied.
    """
    if can(user, action, obj):
        return
    if action == READ or not can(user, READ, obj):
        raise NotFound(not_found)
    raise PermissionDenied(f"User '{user.get_username()}' may not {action} {_describe(obj)}.")


def require_add_child(user: User, parent: Any, *, not_found: str = "Resource does not exist.") -> None:
    if can_add_child(user, parent):
        return
    if not can(user, READ, parent):
        raise NotFound(not_found)
    raise PermissionDenied(f"User '{user.get_username()}' may not add to {_describe(parent)}.")


def visible(user: User, queryset: QuerySet) -> QuerySet:
    """`queryset` narrowed to the objects `user` may read.

    The queryset's model is a root or has a path to one; while every signed-in user may
    read everything this only shuts out anonymous and inactive users.
    """
    if not is_active_user(user):
        return queryset.none()
    return queryset


def grant_owner(obj: Model, user: User) -> None:
    """Give the creator of a root object every grant on it. Call inside the creating transaction.

    The three grants are written in one insert into the root's direct permission table
    (two queries, where guardian's assign_perm takes six per grant); granting again is a no-op.
    """
    if not is_active_user(user):
        return
    codenames = [_codename(obj, action).partition(".")[2] for action in (READ, EDIT, MANAGE)]
    permissions = Permission.objects.filter(content_type=ContentType.objects.get_for_model(obj), codename__in=codenames)
    grant_model = get_user_obj_perms_model(obj)
    grant_model.objects.bulk_create(
        [grant_model(permission=permission, user=user, content_object=obj) for permission in permissions],
        ignore_conflicts=True,
    )


def _describe(obj: Any) -> str:
    return f"{obj._meta.verbose_name} '{obj}'"
