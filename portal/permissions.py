"""The access module: the one place that answers "may user U do action A on object O".

Grants live on root objects only: tracking.Experiment and registry.RegisteredModel (each
declares `access_resource_type`). Every other guarded model declares the field that leads
towards its root (`access_parent`: a Run's is "experiment", a ModelVersionTag's
"model_version") and is judged by that root; `guarded_root` gives the root of an instance.

Levels are MLflow basic-auth's, so scripts mean the same thing:
    READ < USE < EDIT < MANAGE
A higher level includes the lower ones; USE reads, as READ does. Deleting an experiment,
a run, a logged model or a registered model (or a version) and managing grants need MANAGE.
DENY (and MLflow's older NO_PERMISSIONS) for a user, or for one of their teams, overrides
every positive grant and the default. On registered models APPROVE is separate: it decides
transition requests, is not implied by MANAGE and is not given to the creator.

A user's level on a root is the highest of:
- their own grant on it, and the grants of their teams (Django groups) on it;
- unless the root is private: their teams' default for the type (MLflow's role
  permission on "*") and PORTAL_DEFAULT_PERMISSION;
and NONE if any of those is a DENY. Superusers may do everything; anonymous and inactive
users nothing. The creator of a root gets MANAGE as an ordinary, revocable grant; the last
MANAGE grant on a root cannot be removed or lowered except by a superuser.

The Default experiment (`access_open_pk`) takes runs and logged models from every
signed-in user who is not denied it: they may read the experiment itself, and each has
MANAGE on the runs and logged models they created there. Everything else in it follows
the rule above, so with PORTAL_DEFAULT_PERMISSION=NONE a run there is seen by its creator,
the Default experiment's grantees and superusers only.

Storage: each root has guardian's direct foreign-key tables (one for users, one for
groups). A grantee holds at most one level row per root, its permission being the level's
codename (view_, use_, change_, manage_ or deny_<model>), plus an optional approve row.
Team defaults are portal.models.TeamDefaultGrant rows.

Services call `require` / `can`; selectors narrow querysets with `visible`, which filters in
SQL (IN and EXISTS subqueries, so `select_for_update()` keeps working and no row is ever
post-filtered). Doors never decide access, and nothing outside this module touches guardian.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, Model, OuterRef, Q, QuerySet
from django.db.models.lookups import Exact
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from portal import audit
from portal.errors import AlreadyExists, Conflict, InvalidParameter, NotFound, PermissionDenied

# Actions services ask about, weakest first. APPROVE is not on the scale.
READ = "read"
USE = "use"
EDIT = "edit"
MANAGE = "manage"
APPROVE = "approve"
ACTIONS = (READ, USE, EDIT, MANAGE, APPROVE)

# Level names as grants and the grant APIs spell them (MLflow's).
NONE = "NONE"
LEVELS = ("READ", "USE", "EDIT", "MANAGE")
DENY = "DENY"
APPROVE_LEVEL = "APPROVE"
GRANT_LEVELS = (*LEVELS, DENY, APPROVE_LEVEL)
_ALIASES = {"NO_PERMISSIONS": DENY}

_RANK = {NONE: 0, "READ": 1, "USE": 2, "EDIT": 3, "MANAGE": 4}
_ACTION_RANK = {READ: 1, USE: 2, EDIT: 3, MANAGE: 4}
_LEVEL_BY_RANK = {rank: name for name, rank in _RANK.items()}
# Level name <-> codename prefix of the guardian permission that stores it.
_PREFIX = {"READ": "view", "USE": "use", "EDIT": "change", "MANAGE": "manage", DENY: "deny"}
_LEVEL_OF_PREFIX = {prefix: level for level, prefix in _PREFIX.items()}
APPROVE_CODENAME = "approve_transition"

User = AbstractBaseUser | AnonymousUser


def level_parse(value: Any, *, allowed: tuple[str, ...] = GRANT_LEVELS) -> str:
    """A level name from user input (case-insensitive; NO_PERMISSIONS means DENY)."""
    name = value.strip().upper() if isinstance(value, str) else ""
    name = _ALIASES.get(name, name)
    if name not in allowed:
        shown = ", ".join(allowed)
        raise InvalidParameter(f"Invalid permission {value!r}: expected one of {shown}.")
    return name


def is_active_user(user: User) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def default_level() -> str:
    return settings.PORTAL_DEFAULT_PERMISSION


# ---------------------------------------------------------------- resource types


@cache
def _root_models() -> dict[str, type[Model]]:
    return {
        model.access_resource_type: model for model in apps.get_models() if hasattr(model, "access_resource_type")
    }


def resource_types() -> tuple[str, ...]:
    return tuple(_root_models())


def root_model(resource_type: str) -> type[Model]:
    model = _root_models().get(resource_type)
    if model is None:
        raise InvalidParameter(
            f"Invalid resource type {resource_type!r}: expected one of {', '.join(resource_types())}."
        )
    return model


def resource_key(root: Model) -> str:
    """How grant APIs name `root`: an experiment's id, a registered model's name."""
    return str(getattr(root, type(root).access_resource_key))


def resource_get(user: User, resource_type: str, key: Any) -> Model:
    """The root of `resource_type` that grant APIs call `key` (an experiment id, a registered
    model name), if `user` may read it; NotFound otherwise, whether missing or hidden."""
    model = root_model(resource_type)
    field_name = model.access_resource_key
    label = model._meta.verbose_name.capitalize()
    if field_name == "pk":
        try:
            key = int(str(key).strip())
        except (TypeError, ValueError):
            raise NotFound(f"{label} '{key}' not found.") from None
    elif not isinstance(key, str) or not key:
        raise NotFound(f"{label} '{key}' not found.")
    if field_name == "pk" and not 0 <= key < 2**63:
        raise NotFound(f"{label} '{key}' not found.")
    found = visible(user, model.objects.filter(**{field_name: key})).first()
    if found is None:
        raise NotFound(f"{label} '{key}' not found.")
    return found


def _codename(model: type[Model], level: str) -> str:
    if level == APPROVE_LEVEL:
        return APPROVE_CODENAME
    return f"{_PREFIX[level]}_{model._meta.model_name}"


def _supports_approve(model: type[Model]) -> bool:
    return any(codename == APPROVE_CODENAME for codename, _ in model._meta.permissions)


def _level_codenames(model: type[Model], minimum: int) -> list[str]:
    return [_codename(model, level) for level in LEVELS if _RANK[level] >= minimum]


# ---------------------------------------------------------------- one object


@dataclass(frozen=True)
class Access:
    """What a user may do on one root: a level name, whether they may approve, whether denied."""

    level: str
    approve: bool = False
    denied: bool = False


NO_ACCESS = Access(NONE)
FULL_ACCESS = Access("MANAGE", approve=True)


def root_access(user: User, root: Model) -> Access:
    """`user`'s access to the root object `root`, from one query."""
    if not is_active_user(user):
        return NO_ACCESS
    if user.is_superuser:
        return FULL_ACCESS
    model = type(root)
    user_rows = get_user_obj_perms_model(model).objects.filter(user=user, content_object_id=root.pk)
    group_rows = get_group_obj_perms_model(model).objects.filter(group__user=user, content_object_id=root.pk)
    team_defaults = _team_default_model().objects.filter(team__user=user, resource_type=model.access_resource_type)
    values = (
        user_rows.values_list("permission__codename", flat=True)
        .union(group_rows.values_list("permission__codename", flat=True), all=True)
        .union(team_defaults.values_list("level", flat=True), all=True)
    )
    rank = 0 if root.private else _RANK[default_level()]
    approve = False
    for value in values:
        if value == APPROVE_CODENAME:
            approve = True
            continue
        # Team defaults are stored as level names (upper case), grants as codenames.
        level = value if value.isupper() else _LEVEL_OF_PREFIX[value.partition("_")[0]]
        if level == DENY:
            return Access(NONE, denied=True)
        if value.isupper() and root.private:
            continue
        rank = max(rank, _RANK[level])
    return Access(_LEVEL_BY_RANK[rank], approve=approve)


def _open_to_all(root: Model) -> bool:
    open_pk = getattr(type(root), "access_open_pk", None)
    return open_pk is not None and root.pk == open_pk


def level_of(user: User, obj: Any, *, access: Access | None = None) -> str:
    """`user`'s level on `obj` (a root or anything under one), as a level name."""
    root = obj.guarded_root
    access = access or root_access(user, root)
    level = access.level
    if access.denied or not is_active_user(user) or not _open_to_all(root):
        return level
    if obj is root or obj == root:
        return level if _RANK[level] >= _RANK["READ"] else "READ"
    creator_field = getattr(type(obj), "access_creator", None)
    if creator_field and getattr(obj, f"{creator_field}_id") == user.pk:
        return "MANAGE"
    return level


def level_at_least(user: User, obj: Any, action: str, *, access: Access | None = None) -> bool:
    """Does `user`'s level on `obj` reach `action` (READ, USE, EDIT or MANAGE)? `access`: the
    user's root_access to obj's root, when the caller already read it."""
    if user.is_superuser and is_active_user(user):
        return True
    return _RANK[level_of(user, obj, access=access)] >= _ACTION_RANK[action]


def can(user: User, action: str, obj: Any) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not is_active_user(user):
        return False
    if user.is_superuser:
        return True
    root = obj.guarded_root
    access = root_access(user, root)
    if action == APPROVE:
        return access.approve
    return _RANK[level_of(user, obj, access=access)] >= _ACTION_RANK[action]


def can_add_child(user: User, parent: Any) -> bool:
    """May `user` create objects (runs, logged models, versions) under `parent`?

    EDIT on the root; in the Default experiment, any signed-in user it does not deny.
    """
    if not is_active_user(user):
        return False
    root = parent.guarded_root
    access = root_access(user, root)
    if _open_to_all(root):
        return not access.denied
    return _RANK[access.level] >= _RANK["EDIT"]


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


def _describe(obj: Any) -> str:
    return f"{obj._meta.verbose_name} '{obj}'"


# ---------------------------------------------------------------- querysets


def _team_default_model() -> type[Model]:
    return apps.get_model("portal", "TeamDefaultGrant")


def _granted_ids(model: type[Model], user: User, codenames: list[str], *, for_team: bool) -> QuerySet:
    """Ids of the roots of `model` on which `user` (or, for_team, one of their teams) holds
    one of `codenames`: an uncorrelated subquery, computed once per statement."""
    rows = _grant_table(model, for_team).objects.filter(permission__codename__in=codenames)
    rows = rows.filter(group__user=user) if for_team else rows.filter(user=user)
    return rows.values("content_object_id")


def _root_q(
    user: User, model: type[Model], *, minimum: int = 1, as_container: bool = False, also: Q | None = None,
    one_root: bool = False, column: str | None = None,
) -> Q:
    """SQL condition on root `model`: `user` has at least level `minimum` there.

    `as_container` adds the Default experiment, which every signed-in user who is not
    denied it may read as such (but not the runs of others in it).

    Grants and denials are uncorrelated IN subqueries (the user's grant ids, computed once
    per statement and probed per row), not EXISTS correlated with each row; the plain
    column tests come first, so a public root under a READ default needs no probe.

    With `column` (a child's foreign key to `model`, e.g. "registered_model_id") the same
    condition is stated on that column of the child's rows, the root's own columns read
    through uncorrelated subqueries too (see visible_rows).
    """
    team_defaults = _team_default_model().objects.filter(team__user=user, resource_type=model.access_resource_type)
    codenames = _level_codenames(model, minimum)
    deny = [_codename(model, DENY)]
    if column is not None:
        def held(codenames: list[str], for_team: bool) -> Q:
            return Q(**{f"{column}__in": _granted_ids(model, user, codenames, for_team=for_team)})
    elif one_root:
        # Checked for one root at a time (a child row's own root): probes of that root's
        # grant rows, not the set of every root the user holds a grant on.
        def held(codenames: list[str], for_team: bool) -> Q:
            rows = _grant_table(model, for_team).objects.filter(content_object=OuterRef("pk"), permission__codename__in=codenames)
            return Q(Exists(rows.filter(group__user=user) if for_team else rows.filter(user=user)))
    else:
        def held(codenames: list[str], for_team: bool) -> Q:
            return Q(pk__in=_granted_ids(model, user, codenames, for_team=for_team))
    granted = held(codenames, False) | held(codenames, True)
    denied = Q(Exists(team_defaults.filter(level=DENY))) | held(deny, False) | held(deny, True)
    if column is None:
        public = Q(private=False)
    else:
        # Not one of the private roots (usually the fewer): the child's key is never NULL here (visible_rows).
        public = ~Q(**{f"{column}__in": model.objects.filter(private=True).values("pk")})
    if _RANK[default_level()] >= minimum:
        by_default = public
    else:
        levels = [level for level in LEVELS if _RANK[level] >= minimum]
        by_default = Q(Exists(team_defaults.filter(level__in=levels))) & public
    reachable = by_default | granted
    open_pk = getattr(model, "access_open_pk", None)
    if as_container and open_pk is not None and minimum <= _RANK["READ"]:
        reachable = Q(**{column or "pk": open_pk}) | reachable
    if also is not None:
        reachable = reachable | also  # reachable some other way, but still subject to DENY
    return reachable & ~denied


def _visible_q(user: User, model: type[Model]) -> Q:
    if hasattr(model, "access_resource_type"):
        return _root_q(user, model, as_container=True)
    parent_field = model.access_parent
    parent = model._meta.get_field(parent_field).related_model
    if hasattr(parent, "access_resource_type"):
        # One EXISTS on the row's own root (correlated): a lookup by primary key checks one
        # root, not every root the user may read; PostgreSQL plans it as a join on the root's primary key.
        creator_field = getattr(model, "access_creator", None)
        open_pk = getattr(parent, "access_open_pk", None)
        also = None
        if creator_field and open_pk is not None:
            # The Default experiment: one's own runs and logged models, unless denied it.
            also = Q(pk=open_pk) & Q(Exact(OuterRef(f"{creator_field}_id"), user.pk))
        condition = _root_q(user, parent, also=also, one_root=True)
        return Q(Exists(parent.objects.filter(pk=OuterRef(parent_field)).filter(condition)))
    return Q(**{f"{parent_field}__in": parent.objects.filter(_visible_q(user, parent)).values("pk")})


def visible(user: User, queryset: QuerySet) -> QuerySet:
    """`queryset` narrowed, in SQL, to the objects `user` may read.

    The queryset's model is a root or declares `access_parent`; the condition is made of
    IN and EXISTS subqueries (no joins), so locks, counts and paging see only those rows.
    """
    if not is_active_user(user):
        return queryset.none()
    if user.is_superuser:
        return queryset
    return queryset.filter(_visible_q(user, queryset.model))


def roots_where(user: User, action: str, queryset: QuerySet) -> QuerySet:
    """`queryset` of a root model (RegisteredModel, Experiment) narrowed, in SQL, to the roots
    on which `user` holds at least the level of `action` (READ, USE, EDIT or MANAGE): its own
    grants, its teams', the default, DENY and private applied as `root_access` applies them
    (the Default experiment's openness to all is not a level and is not counted)."""
    if action not in _ACTION_RANK:
        raise ValueError(f"unknown level action {action!r}")
    if not is_active_user(user):
        return queryset.none()
    if user.is_superuser:
        return queryset
    return queryset.filter(_root_q(user, queryset.model, minimum=_ACTION_RANK[action]))


def visible_rows(user: User, queryset: QuerySet) -> QuerySet:
    """`queryset` (of a model whose `access_parent` is a root) narrowed to exactly the rows
    `visible` leaves, in the shape a search that walks many of them in its own order wants.

    `visible` tests each row with one EXISTS on its own root: the right shape to judge a
    few rows, or rows read root by root. A search that walks thousands of rows in their own
    order (the newest 100 of 100,000 model versions) then either runs that probe for each
    of them or, as PostgreSQL misjudges its cost, joins the roots the wrong way round:
    60-100 ms measured where a superuser's same search takes 5. Here the rule is stated on
    the row's foreign key instead: IN the user's grant-id sets, NOT IN the private roots
    and the denials, each an uncorrelated subquery computed once per statement and hashed,
    so the search walks its index in order and filters as it goes.
    """
    model = queryset.model
    field = model._meta.get_field(model.access_parent)
    parent = field.related_model
    if not hasattr(parent, "access_resource_type"):
        return visible(user, queryset)
    if not is_active_user(user):
        return queryset.none()
    if user.is_superuser:
        return queryset
    column = field.attname
    also = None
    creator_field = getattr(model, "access_creator", None)
    open_pk = getattr(parent, "access_open_pk", None)
    if creator_field and open_pk is not None:
        # The Default experiment: one's own runs and logged models, unless denied it.
        also = Q(**{column: open_pk, f"{creator_field}_id": user.pk})
    return queryset.filter(Q(**{f"{column}__isnull": False}) & _root_q(user, parent, also=also, column=column))


def visible_get(user: User, queryset: QuerySet, **lookup: Any) -> Model | None:
    """The object of `queryset` matching `lookup` (a key: one row at most), if `user` may
    read it; None when it is missing or hidden.

    For one object this is cheaper than `visible(...).filter(...)`: the row is fetched by its
    key and judged with `can` (one query on its root's grant rows), so no permission
    condition is built, compiled or planned.
    """
    if not is_active_user(user):
        return None
    found = queryset.filter(**lookup).first()
    if found is None or not can(user, READ, found):
        return None
    return found


def visible_under(user: User, queryset: QuerySet, root_ids: list[Any]) -> QuerySet:
    """`queryset` (of a model whose `access_parent` is a root) narrowed to rows under the
    roots `root_ids` that `user` may read.

    Which roots those are is asked once, so a search then filters on a plain list of ids:
    the roots the user reads in full, and the Default experiment's rows they created.
    """
    model = queryset.model
    parent_field = model.access_parent
    root = model._meta.get_field(parent_field).related_model
    if not is_active_user(user):
        return queryset.none()
    if user.is_superuser:
        return queryset.filter(**{f"{parent_field}__in": list(root_ids)})
    rows = root.objects.filter(pk__in=list(root_ids)).annotate(
        readable=ExpressionWrapper(_root_q(user, root), output_field=BooleanField()),
        container=ExpressionWrapper(_root_q(user, root, as_container=True), output_field=BooleanField()),
    )
    readable, own_only = [], []
    for pk, in_full, as_container in rows.values_list("pk", "readable", "container"):
        if in_full:
            readable.append(pk)
        elif as_container:
            own_only.append(pk)
    q = Q(**{f"{parent_field}__in": readable})
    creator_field = getattr(model, "access_creator", None)
    if own_only and creator_field:
        q |= Q(**{f"{parent_field}__in": own_only, creator_field: user})
    return queryset.filter(q)


# ---------------------------------------------------------------- grants


@dataclass
class Grant:
    """One grant as the grant APIs show it. `id` is unique across every grant table (see grant_id)."""

    id: int
    resource_type: str
    resource: str
    root: Model
    level: str
    user: Any = None
    team: Group | None = None

    @property
    def principal(self) -> str:
        return self.user.get_username() if self.user is not None else self.team.name


# A grant's id encodes its table, so one integer names any grant:
#   id = row pk * 8 + kind
# kinds: (resource type index * 2) + (0 for a user grant, 1 for a team grant), and 7 for a
# team default (TeamDefaultGrant). MLflow's role API (role permission ids) and the native
# API (grants/<id>) both use it.
_TEAM_DEFAULT_KIND = 7


def _kind(model: type[Model], for_team: bool) -> int:
    return list(_root_models().values()).index(model) * 2 + int(for_team)


def _grant_table(model: type[Model], for_team: bool) -> type[Model]:
    return get_group_obj_perms_model(model) if for_team else get_user_obj_perms_model(model)


def _permission(model: type[Model], level: str) -> Permission:
    content_type = ContentType.objects.get_for_model(model)
    # With its content type: guardian's save() compares it with the object's (no extra query).
    found = Permission.objects.select_related("content_type")
    return found.get(content_type=content_type, codename=_codename(model, level))


def _row_level(codename: str) -> str:
    if codename == APPROVE_CODENAME:
        return APPROVE_LEVEL
    return _LEVEL_OF_PREFIX[codename.partition("_")[0]]


def _grant_from_row(row: Any, model: type[Model], for_team: bool, root: Model | None = None) -> Grant:
    root = root or row.content_object
    return Grant(
        id=row.pk * 8 + _kind(model, for_team),
        resource_type=model.access_resource_type,
        resource=resource_key(root),
        root=root,
        level=_row_level(row.permission.codename),
        user=None if for_team else row.user,
        team=row.group if for_team else None,
    )


def grant_owner(obj: Model, user: User) -> None:
    """Give the creator of a root object MANAGE on it, as an ordinary grant, and audit it
    (grant.created, as any grant: the grant.* events of a root are its whole access
    history). Call once, inside the creating transaction. Three queries."""
    if not is_active_user(user):
        return
    model = type(obj)
    table = get_user_obj_perms_model(model)
    row = table.objects.create(permission=_permission(model, "MANAGE"), user=user, content_object=obj)
    _audit_grant(user, "grant.created", row.pk * 8 + _kind(model, False), obj, user, None, after="MANAGE")


def _lock_root(root: Model) -> Model:
    return type(root).objects.select_for_update().get(pk=root.pk)


def require_manage(actor: User, root: Model) -> None:
    require(actor, MANAGE, root, not_found=f"{root._meta.verbose_name.capitalize()} '{resource_key(root)}' not found.")


def _manager_count(root: Model) -> int:
    model = type(root)
    codename = _codename(model, "MANAGE")
    return sum(
        _grant_table(model, for_team).objects.filter(content_object_id=root.pk, permission__codename=codename).count()
        for for_team in (False, True)
    )


def _check_last_manager(actor: User, root: Model, old_codename: str | None, new_level: str | None) -> None:
    model = type(root)
    if actor.is_superuser or old_codename != _codename(model, "MANAGE") or new_level == "MANAGE":
        return
    if _manager_count(root) <= 1:
        raise Conflict(
            f"Cannot remove or lower the last MANAGE grant on {_describe(root)}: grant MANAGE to someone else first."
        )


def _principal_filter(user: Any, team: Group | None) -> dict[str, Any]:
    if (user is None) == (team is None):
        raise InvalidParameter("A grant goes to exactly one user or one team.")
    return {"group": team} if team is not None else {"user": user}


def _level_rows(model: type[Model], root: Model, user: Any, team: Group | None) -> QuerySet:
    table = _grant_table(model, team is not None)
    return table.objects.filter(content_object_id=root.pk, **_principal_filter(user, team))


@transaction.atomic
def grant_create(*, actor: User, root: Model, level: str, user: Any = None, team: Group | None = None) -> Grant:
    """Grant `level` on `root` to a user or a team. Needs MANAGE on `root`.

    A grantee holds one level at a time (and APPROVE beside it): a second level grant is
    RESOURCE_ALREADY_EXISTS until the first is revoked or changed with grant_update, as
    in MLflow. APPROVE exists on registered models only.
    """
    level = level_parse(level)
    model = type(root)
    require_manage(actor, root)
    root = _lock_root(root)
    if level == APPROVE_LEVEL and not _supports_approve(model):
        raise InvalidParameter(f"APPROVE is a grant on registered models, not on a {model._meta.verbose_name}.")
    rows = _level_rows(model, root, user, team)
    if level == APPROVE_LEVEL:
        taken = rows.filter(permission__codename=APPROVE_CODENAME)
    else:
        taken = rows.exclude(permission__codename=APPROVE_CODENAME)
    if taken.exists():
        raise AlreadyExists(f"{_principal_name(user, team)} already has a grant on {_describe(root)}.")
    row = rows.model.objects.create(
        permission=_permission(model, level), content_object=root, **_principal_filter(user, team)
    )
    grant = _grant_from_row(row, model, team is not None, root)
    _audit_grant(actor, "grant.created", grant.id, root, user, team, after=level)
    return grant


@transaction.atomic
def grant_update(*, actor: User, root: Model, level: str, user: Any = None, team: Group | None = None) -> Grant:
    """Change the level a user or team holds on `root` (not APPROVE, which is on or off)."""
    level = level_parse(level, allowed=(*LEVELS, DENY))
    model = type(root)
    require_manage(actor, root)
    root = _lock_root(root)
    row = _level_rows(model, root, user, team).exclude(permission__codename=APPROVE_CODENAME).select_related(
        "permission"
    ).first()
    if row is None:
        raise NotFound(f"{_principal_name(user, team)} has no grant on {_describe(root)}.")
    _check_last_manager(actor, root, row.permission.codename, level)
    old_level = _row_level(row.permission.codename)
    if old_level == level:
        # Nothing changes, so nothing is written or audited (a retry is harmless).
        return _grant_from_row(row, model, team is not None, root)
    row.permission = _permission(model, level)
    row.save(update_fields=["permission"])
    grant = _grant_from_row(row, model, team is not None, root)
    _audit_grant(actor, "grant.updated", grant.id, root, user, team, before=old_level, after=level)
    return grant


@transaction.atomic
def grant_revoke(
    *, actor: User, root: Model, user: Any = None, team: Group | None = None, approve: bool = False
) -> None:
    """Remove the level grant (or with `approve`, the APPROVE grant) of a user or team on `root`."""
    model = type(root)
    require_manage(actor, root)
    root = _lock_root(root)
    rows = _level_rows(model, root, user, team).select_related("permission")
    rows = rows.filter(permission__codename=APPROVE_CODENAME) if approve else rows.exclude(
        permission__codename=APPROVE_CODENAME
    )
    row = rows.first()
    if row is None:
        raise NotFound(f"{_principal_name(user, team)} has no grant on {_describe(root)}.")
    _check_last_manager(actor, root, row.permission.codename, None)
    grant_id = row.pk * 8 + _kind(model, team is not None)
    row.delete()
    _audit_grant(actor, "grant.revoked", grant_id, root, user, team, before=_row_level(row.permission.codename))


def _principal_name(user: Any, team: Group | None) -> str:
    return f"Team '{team.name}'" if team is not None else f"User '{user.get_username()}'"


def _audit_grant(
    actor: User | None,
    action: str,
    grant_id: int,
    root: Model,
    user: Any,
    team: Group | None,
    *,
    before: str | None = None,
    after: str | None = None,
) -> None:
    """One grant.* event, readable by the root's MANAGE holders. before/after are
    {"level": ..., "user" or "team": name}, None on the side where there is no grant."""
    principal = {"team": team.name} if team is not None else {"user": user.get_username()}
    audit.record(
        actor=actor,
        action=action,
        object_type="grant",
        object_id=grant_id,
        object_name=f"{_principal_name(user, team)} on {_describe(root)}",
        before={"level": before, **principal} if before else None,
        after={"level": after, **principal} if after else None,
        resource=root,
    )


def audit_grants_removed(*, actor: User | None, user: Any = None, team: Group | None = None) -> None:
    """Audit as grant.revoked every grant a user or team holds directly, when the user or
    team is about to be deleted (their grant rows go with them by cascade), so each root's
    history shows the access ending. Call in the deleting transaction, before the delete."""
    for grant in grants_of(user=user, team=team):
        _audit_grant(actor, "grant.revoked", grant.id, grant.root, grant.user, grant.team, before=grant.level)


def grants_on(root: Model) -> list[Grant]:
    """Every grant on `root`: users first, then teams, by name."""
    model = type(root)
    grants = []
    for for_team, order in ((False, "user__username"), (True, "group__name")):
        related = ("permission", "group") if for_team else ("permission", "user")
        rows = _grant_table(model, for_team).objects.filter(content_object_id=root.pk).select_related(*related)
        grants += [_grant_from_row(row, model, for_team, root) for row in rows.order_by(order, "permission__codename")]
    return grants


def grants_of(*, user: Any = None, team: Group | None = None, resource_type: str | None = None) -> list[Grant]:
    """Every grant held directly by a user or a team (not through teams), by resource."""
    grants = []
    for model in _root_models().values():
        if resource_type and model.access_resource_type != resource_type:
            continue
        for_team = team is not None
        rows = (
            _grant_table(model, for_team)
            .objects.filter(**_principal_filter(user, team))
            .select_related("permission", "content_object", "group" if for_team else "user")
            .order_by("content_object_id", "permission__codename")
        )
        grants += [_grant_from_row(row, model, for_team) for row in rows]
    return grants


def grant_get(grant_id: int) -> Grant | None:
    """The grant (not a team default) with this id, or None."""
    if not isinstance(grant_id, int) or grant_id < 0:
        return None
    pk, kind = divmod(grant_id, 8)
    models = list(_root_models().values())
    index, for_team = divmod(kind, 2)
    if index >= len(models):
        return None
    model = models[index]
    row = (
        _grant_table(model, bool(for_team))
        .objects.filter(pk=pk)
        .select_related("permission", "content_object", "group" if for_team else "user")
        .first()
    )
    return _grant_from_row(row, model, bool(for_team)) if row else None


# ---------------------------------------------------------------- team defaults


def team_default_id(row: Any) -> int:
    return row.pk * 8 + _TEAM_DEFAULT_KIND


def team_default_pk(grant_id: int) -> int | None:
    if not isinstance(grant_id, int) or grant_id < 0:
        return None
    pk, kind = divmod(grant_id, 8)
    return pk if kind == _TEAM_DEFAULT_KIND else None


# ---------------------------------------------------------------- who can see this


@dataclass
class Holder:
    """Someone who holds access to a root, and where it comes from."""

    kind: str  # "user", "team" or "everyone"
    name: str
    level: str
    approve: bool = False
    sources: list[str] = field(default_factory=list)


def holders_of(root: Model) -> list[Holder]:
    """Everyone with access to `root` and why: each user with a grant of their own or through
    a team (effective level, DENY applied), each team with a grant or a default, the
    signed-in users at large (the default), and the superusers."""
    model = type(root)
    user_model = get_user_model()
    teams: dict[int, Holder] = {}
    users: dict[int, dict[str, Any]] = {}

    def user_entry(u: Any) -> dict[str, Any]:
        return users.setdefault(u.pk, {"user": u, "ranks": [], "approve": False, "denied": False, "sources": []})

    team_levels: dict[int, list[str]] = {}
    for grant in grants_on(root):
        if grant.user is not None:
            entry = user_entry(grant.user)
            _note(entry, grant.level, "grant")
        else:
            holder = teams.setdefault(grant.team.pk, Holder("team", grant.team.name, NONE))
            holder.sources.append("grant")
            team_levels.setdefault(grant.team.pk, []).append(grant.level)
    defaults = _team_default_model().objects.filter(resource_type=model.access_resource_type).select_related("team")
    for row in defaults:
        if root.private and row.level != DENY:
            continue
        holder = teams.setdefault(row.team.pk, Holder("team", row.team.name, NONE))
        holder.sources.append("team default")
        team_levels.setdefault(row.team.pk, []).append(row.level)
    for team_pk, levels in team_levels.items():
        holder = teams[team_pk]
        holder.approve = APPROVE_LEVEL in levels
        holder.level = DENY if DENY in levels else _LEVEL_BY_RANK[max([_RANK.get(lv, 0) for lv in levels] + [0])]
    members = user_model.groups.through.objects.filter(group_id__in=list(teams)).select_related("user")
    for membership in members:
        holder = teams[membership.group_id]
        entry = user_entry(membership.user)
        for level in team_levels[membership.group_id]:
            _note(entry, level, f"team:{holder.name}")
    everyone = NONE if root.private else default_level()
    result = [
        Holder("everyone", "signed-in users", everyone, sources=["private" if root.private else "default"]),
    ]
    result += sorted(teams.values(), key=lambda h: h.name)
    for superuser in user_model.objects.filter(is_superuser=True, is_active=True):
        entry = user_entry(superuser)
        entry["sources"].append("superuser")
    for entry in sorted(users.values(), key=lambda e: e["user"].get_username()):
        u = entry["user"]
        if not u.is_active:
            continue
        if u.is_superuser:
            level, approve = "MANAGE", True
        elif entry["denied"]:
            level, approve = DENY, False
        else:
            rank = max(entry["ranks"] + [_RANK[everyone]])
            level, approve = _LEVEL_BY_RANK[rank], entry["approve"]
        result.append(Holder("user", u.get_username(), level, approve, entry["sources"]))
    return result


def _note(entry: dict[str, Any], level: str, source: str) -> None:
    entry["sources"].append(source if level != APPROVE_LEVEL else f"{source} (approve)")
    if level == APPROVE_LEVEL:
        entry["approve"] = True
    elif level == DENY:
        entry["denied"] = True
    else:
        entry["ranks"].append(_RANK[level])
