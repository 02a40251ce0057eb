"""Reads of account data (users, teams, tokens) and of grants, for the native API.

Grants and holders are shown to those who may MANAGE the object (or superusers): who has
access to what is itself guarded. A grant the caller may not see is reported exactly like
a missing one.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db.models import Prefetch, Q, QuerySet

from portal import permissions, services
from portal.errors import NotFound, PermissionDenied
from portal.models import ApiToken, AuditEvent, Team, TeamDefaultGrant

User = get_user_model()


def user_list() -> QuerySet:
    """Every account: any signed-in user may look colleagues up (to grant them access)."""
    return User.objects.all()


@dataclass(frozen=True)
class Membership:
    id: int
    name: str
    is_admin: bool


def memberships_of(user: AbstractBaseUser) -> list[Membership]:
    """The teams `user` belongs to, by name, and whether they administer each."""
    admin_of = set(user.administered_teams.values_list("pk", flat=True))
    return [Membership(team.pk, team.name, team.pk in admin_of) for team in user.groups.order_by("name")]


def team_list() -> QuerySet:
    """Every team with its members, admins and defaults loaded (a few queries per page)."""
    by_name = User.objects.order_by("username")
    return Group.objects.select_related("team").prefetch_related(
        Prefetch("user_set", queryset=by_name),
        Prefetch("team__admins", queryset=by_name),
        Prefetch("default_grants", queryset=TeamDefaultGrant.objects.order_by("resource_type")),
    )


def team_default_get(*, team_id: int, resource_type: str) -> TeamDefaultGrant:
    row = TeamDefaultGrant.objects.filter(team_id=team_id, resource_type=resource_type).first()
    if row is None:
        raise NotFound(f"Team {team_id} has no default permission on {resource_type}.")
    return row


def api_tokens_of(user: AbstractBaseUser) -> QuerySet:
    """The user's own tokens, revoked ones included (the list says which)."""
    return ApiToken.objects.filter(user=user)


# ---------------------------------------------------------------- grants


def _managed_root(user: AbstractBaseUser, resource_type: str, resource: Any) -> Any:
    root = permissions.resource_get(user, resource_type, resource)
    permissions.require_manage(user, root)
    return root


def grants_for_user(user: AbstractBaseUser, *, resource_type: str, resource: Any) -> list[permissions.Grant]:
    """The grants on one experiment or registered model. NotFound if the user may not read
    it, PermissionDenied if they may read it but not MANAGE it."""
    return permissions.grants_on(_managed_root(user, resource_type, resource))


def holders_for_user(user: AbstractBaseUser, *, resource_type: str, resource: Any) -> list[permissions.Holder]:
    """Who holds access to one experiment or registered model, and why (as grants_for_user)."""
    return permissions.holders_of(_managed_root(user, resource_type, resource))


def grant_get_for_user(user: AbstractBaseUser, grant_id: int) -> permissions.Grant:
    """One grant, if `user` may MANAGE its object. NotFound when the grant is missing or its
    object hidden; PermissionDenied when the object is readable but not managed."""
    grant = permissions.grant_get(grant_id)
    if grant is None:
        raise NotFound(f"Grant {grant_id} not found.")
    try:
        permissions.require_manage(user, grant.root)
    except NotFound:
        # require_manage names the object; a probe by grant id must not learn it.
        raise NotFound(f"Grant {grant_id} not found.") from None
    return grant


# ---------------------------------------------------------------- MLflow's auth API
# Reads (and two small compositions of services, at the end) for portal/mlflow_auth.py:
# MLflow's users, role permissions and role assignments are the portal's users, team
# grants and defaults, and team memberships. Grants on objects the reader may not read are
# left out, so no listing reveals that a hidden experiment or model exists.

# A team default covers every object of its type; MLflow calls that pattern "*".
EVERY_OBJECT = "*"


def _is_superuser(actor: AbstractBaseUser) -> bool:
    return permissions.is_active_user(actor) and actor.is_superuser


def user_get_for_user(actor: AbstractBaseUser, username: str) -> AbstractBaseUser:
    """A user's account as `actor` may read it: their own, or anyone's for a superuser.

    As in MLflow, asking about someone else is PERMISSION_DENIED whether they exist or not.
    """
    if not _is_superuser(actor) and actor.get_username() != username:
        raise PermissionDenied(f"User '{actor.get_username()}' may only read their own account.")
    return services.user_get(username)


def user_list_for_user(actor: AbstractBaseUser) -> list[tuple[AbstractBaseUser, list[Group]]]:
    """Every account by username, each with the teams `actor` may see it in: all of them
    for a superuser and for one's own account, none for others' (MLflow shows those only to
    admins of the workspace). Any signed-in user may list the accounts: MLflow lets every
    member of a workspace do so, and the portal has one workspace."""
    users = list(user_list().order_by("username"))
    shown = users if _is_superuser(actor) else [user for user in users if user.pk == actor.pk]
    memberships = _team_ids_by_user(shown)
    team_pks = {pk for pks in memberships.values() for pk in pks}
    teams = {team.pk: team for team in Group.objects.filter(pk__in=team_pks)}
    return [(user, [teams[pk] for pk in memberships.get(user.pk, [])]) for user in users]


def _team_ids_by_user(users: Iterable[AbstractBaseUser]) -> dict[int, list[int]]:
    result: dict[int, list[int]] = defaultdict(list)
    rows = User.groups.through.objects.filter(user__in=[u.pk for u in users]).order_by("group__name")
    for user_id, group_id in rows.values_list("user_id", "group_id"):
        result[user_id].append(group_id)
    return result


def grants_visible(actor: AbstractBaseUser, grants: Iterable[permissions.Grant]) -> list[permissions.Grant]:
    """`grants` without those on objects `actor` may not read (one query per resource type)."""
    grants = list(grants)
    if _is_superuser(actor):
        return grants
    by_type: dict[str, set[Any]] = defaultdict(set)
    for grant in grants:
        by_type[grant.resource_type].add(grant.root.pk)
    readable: dict[str, set[Any]] = {}
    for resource_type, pks in by_type.items():
        model = permissions.root_model(resource_type)
        rows = permissions.visible(actor, model.objects.filter(pk__in=pks))
        readable[resource_type] = set(rows.values_list("pk", flat=True))
    return [grant for grant in grants if grant.root.pk in readable[grant.resource_type]]


def user_grants_for_user(actor: AbstractBaseUser, user: AbstractBaseUser) -> list[permissions.Grant]:
    """The grants `user` holds directly (not through teams), on objects `actor` may read."""
    return grants_visible(actor, permissions.grants_of(user=user))


@dataclass(frozen=True)
class EffectiveLevel:
    """A user's access to one object as the access module decides it."""

    level: str  # READ, USE, EDIT, MANAGE or NONE
    denied: bool = False


def user_level_get_for_user(
    actor: AbstractBaseUser, *, username: str, resource_type: str, resource_id: Any
) -> EffectiveLevel | None:
    """`username`'s effective level on an object (their grants, their teams' grants and
    defaults, the portal default; DENY applied).

    Superusers may ask about anyone and users about themselves; for them an object that is
    missing, or that they may not read, answers None (nothing to report, no existence
    leak). Anyone else must hold MANAGE on the object (NotFound if they may not read it,
    PermissionDenied if they may read but not manage it).
    """
    permissions.root_model(resource_type)
    if _is_superuser(actor) or actor.get_username() == username:
        target = services.user_get(username)
        try:
            root = permissions.resource_get(actor, resource_type, resource_id)
        except NotFound:
            return None
    else:
        root = _managed_root(actor, resource_type, resource_id)
        target = services.user_get(username)
    access = permissions.root_access(target, root)
    return EffectiveLevel(permissions.level_of(target, root, access=access), access.denied)


@dataclass(frozen=True)
class TeamPermission:
    """One of a team's rights: a grant on one object, or its default for every object of a
    type (resource_pattern "*"). `id` is the grant's id (permissions.grant_get) or the
    default's (permissions.team_default_id)."""

    id: int
    team_id: int
    resource_type: str
    resource_pattern: str
    level: str


def team_permission_from_grant(grant: permissions.Grant) -> TeamPermission:
    return TeamPermission(grant.id, grant.team.pk, grant.resource_type, grant.resource, grant.level)


def team_permission_from_default(row: TeamDefaultGrant) -> TeamPermission:
    return TeamPermission(permissions.team_default_id(row), row.team_id, row.resource_type, EVERY_OBJECT, row.level)


def teams_by_name() -> list[Group]:
    return list(Group.objects.order_by("name"))


def teams_of(user: AbstractBaseUser) -> list[Group]:
    """The teams `user` is a member of, by name."""
    return list(Group.objects.filter(user=user).order_by("name"))


def team_descriptions(teams: Iterable[Group]) -> dict[int, str]:
    """Each team's description (a group made in the Django admin may have no Team row yet)."""
    pks = [team.pk for team in teams]
    return dict(Team.objects.filter(group_id__in=pks).values_list("group_id", "description"))


def team_permissions_for_user(actor: AbstractBaseUser, teams: Iterable[Group]) -> dict[int, list[TeamPermission]]:
    """Each team's grants on objects `actor` may read, then its defaults, by team id."""
    teams = list(teams)
    result: dict[int, list[TeamPermission]] = {team.pk: [] for team in teams}
    grants = [grant for team in teams for grant in permissions.grants_of(team=team)]
    for grant in grants_visible(actor, grants):
        result[grant.team.pk].append(team_permission_from_grant(grant))
    for row in TeamDefaultGrant.objects.filter(team_id__in=list(result)).order_by("resource_type"):
        result[row.team_id].append(team_permission_from_default(row))
    return result


def team_permission_get_for_user(actor: AbstractBaseUser, permission_id: Any) -> permissions.Grant | TeamDefaultGrant:
    """The team grant or team default that `permission_id` names.

    NotFound, with one message, when there is none, when the id names a user's grant, or
    when the grant is on an object `actor` may not read.
    """
    missing = NotFound(f"Role permission with id={permission_id} not found")
    if not isinstance(permission_id, int):
        raise missing
    default_pk = permissions.team_default_pk(permission_id)
    if default_pk is not None:
        row = TeamDefaultGrant.objects.filter(pk=default_pk).first()
        if row is None:
            raise missing
        return row
    grant = permissions.grant_get(permission_id)
    if grant is None or grant.team is None or not grants_visible(actor, [grant]):
        raise missing
    return grant


def team_members(team: Group) -> list[Any]:
    """The team's memberships (auth_user_groups rows, with their users), oldest first."""
    return list(User.groups.through.objects.filter(group=team).select_related("user").order_by("pk"))


@dataclass
class UserPermissions:
    """Everything a user holds: direct grants, and each of their teams with its rights."""

    user: Any
    direct: list[permissions.Grant] = field(default_factory=list)
    teams: list[tuple[Group, list[TeamPermission]]] = field(default_factory=list)


def user_permissions_for_user(actor: AbstractBaseUser, username: str) -> UserPermissions:
    """A user's grants and team rights, as `actor` may see them: one's own or, for a
    superuser, anyone's; only on objects `actor` may read."""
    user = user_get_for_user(actor, username)
    teams = teams_of(user)
    by_team = team_permissions_for_user(actor, teams)
    return UserPermissions(
        user=user, direct=user_grants_for_user(actor, user), teams=[(team, by_team[team.pk]) for team in teams]
    )


# ---------------------------------------------------------------- the audit log
# Superusers read every event. Anyone else reads the history of one experiment or registered
# model they MANAGE: the events whose resource is that root (the root itself, its grants,
# and, from the registry, its versions, aliases, requests and policy). Events about users,
# teams, team defaults and tokens concern no root, so only superusers read them.

AUDIT_ONE_OBJECT = (
    "Only administrators may read the audit log at large. To read the history of an object you "
    "MANAGE, name it: object_type=experiment&object=<experiment id>, or "
    "object_type=registered_model&object=<registered model name>."
)


def _audit_root_q(resource_type: str, root_pk: Any) -> Q:
    """Events about a root or anything under it."""
    pk = str(root_pk)
    return Q(resource_type=resource_type, resource_id=pk) | Q(object_type=resource_type, object_id=pk)


def _audit_object_q(superuser: AbstractBaseUser, object_type: str, name: str) -> Q:
    """For a superuser: events naming the object by id or readable name (deleted objects
    included) and, for an experiment or registered model that exists, everything under it."""
    q = Q(object_id=name) | Q(object_name=name)
    if object_type:
        q &= Q(object_type=object_type)
    if object_type in permissions.resource_types():
        try:
            q |= _audit_root_q(object_type, permissions.resource_get(superuser, object_type, name).pk)
        except NotFound:
            pass
    return q


def audit_events_for_user(
    user: AbstractBaseUser,
    *,
    actor: str = "",
    object_type: str = "",
    object: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet:
    """The audit events `user` may read that match the filters (all optional for a superuser).

    Anyone else must name one experiment (`object` = its id) or registered model (its name)
    that they MANAGE, and gets its history: NotFound if they may not read it (or it does
    not exist), PermissionDenied if they may read but not manage it, or name nothing.
    """
    events = AuditEvent.objects.all()
    if _is_superuser(user):
        if object:
            events = events.filter(_audit_object_q(user, object_type, object))
        elif object_type:
            events = events.filter(object_type=object_type)
    else:
        if not (permissions.is_active_user(user) and object_type in permissions.resource_types() and object):
            raise PermissionDenied(AUDIT_ONE_OBJECT)
        root = permissions.resource_get(user, object_type, object)
        permissions.require_manage(user, root)
        events = events.filter(_audit_root_q(object_type, root.pk))
    if actor:
        events = events.filter(actor_username=actor)
    if action:
        events = events.filter(action=action)
    if since is not None:
        events = events.filter(timestamp__gte=since)
    if until is not None:
        events = events.filter(timestamp__lte=until)
    return events


def audit_event_get_for_user(user: AbstractBaseUser, event_id: int) -> AuditEvent:
    """One event, for a superuser or a MANAGE holder of the root it concerns. NotFound when
    it is missing, concerns no root (users, teams, tokens) or a root `user` may not read;
    PermissionDenied when the root is readable but not managed."""
    missing = NotFound(f"Audit event {event_id} not found.")
    event = AuditEvent.objects.filter(pk=event_id).first()
    if event is None:
        raise missing
    if _is_superuser(user):
        return event
    if event.resource_type:
        resource_type, root_pk = event.resource_type, event.resource_id
    else:
        resource_type, root_pk = event.object_type, event.object_id
    if resource_type not in permissions.resource_types():
        raise missing
    root = permissions.root_model(resource_type).objects.filter(pk=root_pk).first() if root_pk.isdigit() else None
    if root is None or not permissions.can(user, permissions.READ, root):
        raise missing
    if not permissions.can(user, permissions.MANAGE, root):
        raise PermissionDenied(
            f"User '{user.get_username()}' may not read the history of {root._meta.verbose_name} '{root}'."
        )
    return event
