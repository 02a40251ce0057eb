"""Account services: API tokens, users, teams (Django groups) and their members, admins and defaults.

Grants on experiments and registered models are portal.permissions' (grant_create, ...).

Every change here writes one audit event (portal.audit) in the same transaction: user.*,
team.*, team_default.*, token.*. A call that changes nothing (adding a member twice,
revoking a revoked token) writes none. Passwords and token secrets never reach the log:
a password change is recorded as having happened, a token by its name and prefix. The
audit_* helpers at the end are shared with portal.admin, so the Django admin's changes
read the same in the log.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal import audit, permissions
from portal.errors import AlreadyExists, Conflict, InvalidParameter, NotFound, PermissionDenied
from portal.models import ApiToken, Team, TeamDefaultGrant

TOKEN_PREFIX = "mlp_"
# last_used_at is a hint, not an audit trail: writing it on every request would turn each
# read into a write, so it is refreshed at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    raw: str  # shown once, never stored


@transaction.atomic
def api_token_create(*, user: AbstractBaseUser, name: str) -> CreatedToken:
    name = (name or "").strip()
    if not name:
        raise InvalidParameter("A token needs a name.")
    if len(name) > 100:
        raise InvalidParameter("A token name has at most 100 characters.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, digest=token_digest(raw), prefix=raw[:10])
    audit_token(user, "token.created", token, after=token_snapshot(token))
    return CreatedToken(token=token, raw=raw)


@transaction.atomic
def api_token_revoke(*, user: AbstractBaseUser, token_id: int, actor: AbstractBaseUser | None = None) -> ApiToken:
    """Revoke one of `user`'s tokens; `actor` is who does it (the user, or an administrator
    in the Django admin). Idempotent: revoking twice keeps the first time and audits once."""
    token = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
    if token is None:
        raise NotFound(f"Token {token_id} does not exist.")
    if token.revoked_at is None:
        before = token_snapshot(token)
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_token(actor or user, "token.revoked", token, before=before, after=token_snapshot(token))
    return token


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The usable token for `raw`, with its user loaded; None if unknown or revoked."""
    token = ApiToken.objects.usable().select_related("user").filter(digest=token_digest(raw)).first()
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # A conditional UPDATE: concurrent requests do not all write.
        ApiToken.objects.filter(pk=token.pk, last_used_at=token.last_used_at).update(last_used_at=now)
    return token


# ---------------------------------------------------------------- users

User = get_user_model()


def _require_superuser(actor: AbstractBaseUser, what: str) -> None:
    if not (actor.is_authenticated and actor.is_active and actor.is_superuser):
        raise PermissionDenied(f"Only an administrator may {what}.")


def user_get(username: str) -> AbstractBaseUser:
    user = User.objects.filter(username=username).first() if isinstance(username, str) and username else None
    if user is None:
        raise NotFound(f"User with username={username} not found")
    return user


def _password_validated(password: Any, user: AbstractBaseUser | None) -> str:
    if not isinstance(password, str) or not password:
        raise InvalidParameter("A password is required.")
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise InvalidParameter(" ".join(exc.messages)) from None
    return password


@transaction.atomic
def user_create(
    *, actor: AbstractBaseUser, username: str, password: str, email: str = "", is_superuser: bool = False
) -> AbstractBaseUser:
    """Create an account. Administrators only."""
    _require_superuser(actor, "create users")
    username = (username or "").strip() if isinstance(username, str) else ""
    if not username:
        raise InvalidParameter("A username is required.")
    try:
        UnicodeUsernameValidator()(username)
    except DjangoValidationError as exc:
        raise InvalidParameter(" ".join(exc.messages)) from None
    if len(username) > 150:
        raise InvalidParameter("A username has at most 150 characters.")
    if User.objects.filter(username__iexact=username).exists():
        raise AlreadyExists(f"User '{username}' already exists.")
    candidate = User(username=username, email=email or "")
    password = _password_validated(password, candidate)
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password, email=email or "")
    except IntegrityError:
        raise AlreadyExists(f"User '{username}' already exists.") from None
    if is_superuser:
        user.is_superuser = user.is_staff = True
        user.save(update_fields=["is_superuser", "is_staff"])
    audit_user(actor, "user.created", user, after=user_snapshot(user))
    return user


@transaction.atomic
def user_update_password(*, actor: AbstractBaseUser, username: str, password: str) -> AbstractBaseUser:
    """Set a password: one's own, or anyone's for an administrator."""
    user = user_get(username)
    if user.pk != actor.pk:
        _require_superuser(actor, "change another user's password")
    user.set_password(_password_validated(password, user))
    user.save(update_fields=["password"])
    audit_user(actor, "user.password_changed", user)  # that it changed; never the password
    return user


@transaction.atomic
def user_update_admin(*, actor: AbstractBaseUser, username: str, is_admin: bool) -> AbstractBaseUser:
    """Make a user an administrator (superuser and staff) or not. Administrators only; the
    last active administrator cannot be demoted."""
    _require_superuser(actor, "change who is an administrator")
    user = User.objects.select_for_update().filter(username=username).first()
    if user is None:
        raise NotFound(f"User with username={username} not found")
    if user.is_superuser and not is_admin:
        if not User.objects.filter(is_superuser=True, is_active=True).exclude(pk=user.pk).exists():
            raise Conflict("Cannot demote the last administrator.")
    was_admin = user.is_superuser
    user.is_superuser = user.is_staff = bool(is_admin)
    user.save(update_fields=["is_superuser", "is_staff"])
    if was_admin != user.is_superuser:
        audit_user(
            actor, "user.admin_changed", user, before={"is_admin": was_admin}, after={"is_admin": user.is_superuser}
        )
    return user


@transaction.atomic
def user_delete(*, actor: AbstractBaseUser, username: str) -> None:
    """Delete an account with its tokens, memberships and grants. Administrators only, and
    not oneself (an administrator cannot lock everyone out by accident)."""
    _require_superuser(actor, "delete users")
    user = user_get(username)
    if user.pk == actor.pk:
        raise Conflict("You cannot delete your own account.")
    audit_user_deleted(actor, user)
    user.delete()


# ---------------------------------------------------------------- teams


def team_get(team_id: Any) -> Group:
    try:
        pk = int(team_id)
    except (TypeError, ValueError):
        raise InvalidParameter(f"Invalid team id {team_id!r}: expected an integer.") from None
    team = Group.objects.filter(pk=pk).first()
    if team is None:
        raise NotFound(f"Team with id={team_id} not found")
    return team


def team_get_by_name(name: str) -> Group:
    team = Group.objects.filter(name=name).first() if isinstance(name, str) and name else None
    if team is None:
        raise NotFound(f"Team '{name}' not found")
    return team


def team_profile(team: Group) -> Team:
    """The portal's row for a group (created on first use for groups made in the admin)."""
    profile, _ = Team.objects.get_or_create(group=team)
    return profile


def _team_name_validated(name: Any) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise InvalidParameter("A team needs a name.")
    if len(name) > 150:
        raise InvalidParameter("A team name has at most 150 characters.")
    return name


@transaction.atomic
def team_create(*, actor: AbstractBaseUser, name: str, description: str = "") -> Group:
    """Create a team. Administrators only."""
    _require_superuser(actor, "create teams")
    name = _team_name_validated(name)
    if Group.objects.filter(name=name).exists():
        raise AlreadyExists(f"Team '{name}' already exists.")
    try:
        with transaction.atomic():
            team = Group.objects.create(name=name)
    except IntegrityError:
        raise AlreadyExists(f"Team '{name}' already exists.") from None
    Team.objects.create(group=team, description=_description_validated(description))
    audit_team(actor, "team.created", team, after=team_snapshot(team))
    return team


def _description_validated(description: Any) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise InvalidParameter("A description must be a string.")
    if len(description) > 5000:
        raise InvalidParameter("A description has at most 5000 characters.")
    return description


@transaction.atomic
def team_update(
    *, actor: AbstractBaseUser, team_id: Any, name: str | None = None, description: str | None = None
) -> Group:
    """Rename a team or change its description. Administrators only."""
    _require_superuser(actor, "change teams")
    team = team_get(team_id)
    before = team_snapshot(team)
    if name is not None:
        name = _team_name_validated(name)
        if Group.objects.filter(name=name).exclude(pk=team.pk).exists():
            raise AlreadyExists(f"Team '{name}' already exists.")
        team.name = name
        team.save(update_fields=["name"])
    if description is not None:
        profile = team_profile(team)
        profile.description = _description_validated(description)
        profile.save(update_fields=["description"])
    after = team_snapshot(team)
    changed = [key for key in after if after[key] != before[key]]
    if changed:
        audit_team(
            actor,
            "team.updated",
            team,
            before={key: before[key] for key in changed},
            after={key: after[key] for key in changed},
        )
    return team


@transaction.atomic
def team_delete(*, actor: AbstractBaseUser, team_id: Any) -> None:
    """Delete a team with its memberships, grants and defaults. Administrators only."""
    _require_superuser(actor, "delete teams")
    team = team_get(team_id)
    audit_team_deleted(actor, team)
    team.delete()


def can_manage_members(actor: AbstractBaseUser, team: Group) -> bool:
    if not (actor.is_authenticated and actor.is_active):
        return False
    return actor.is_superuser or team_profile(team).admins.filter(pk=actor.pk).exists()


def _require_member_manager(actor: AbstractBaseUser, team: Group) -> None:
    if not can_manage_members(actor, team):
        raise PermissionDenied(f"Only an administrator or an admin of team '{team.name}' may change its members.")


@transaction.atomic
def team_member_add(*, actor: AbstractBaseUser, team_id: Any, username: str) -> Any:
    """Add a user to a team (superusers and the team's admins). Idempotent; returns the membership row."""
    team = team_get(team_id)
    _require_member_manager(actor, team)
    user = user_get(username)
    membership, created = User.groups.through.objects.get_or_create(user=user, group=team)
    if created:
        audit_team(actor, "team.member_added", team, after={"user": user.get_username()})
    return membership


@transaction.atomic
def team_member_remove(*, actor: AbstractBaseUser, team_id: Any, username: str) -> None:
    """Remove a user from a team, and from its admins (superusers and the team's admins)."""
    team = team_get(team_id)
    _require_member_manager(actor, team)
    user = user_get(username)
    deleted, _ = User.groups.through.objects.filter(user=user, group=team).delete()
    if not deleted:
        raise NotFound(f"User '{user.get_username()}' is not a member of team '{team.name}'.")
    profile = team_profile(team)
    was_admin = profile.admins.filter(pk=user.pk).exists()
    profile.admins.remove(user)
    audit_team(actor, "team.member_removed", team, before={"user": user.get_username(), "admin": was_admin})


@transaction.atomic
def team_admin_set(*, actor: AbstractBaseUser, team_id: Any, username: str, is_admin: bool) -> Group:
    """Make a user an admin of a team (and a member), or not. Administrators only."""
    _require_superuser(actor, "choose team admins")
    team = team_get(team_id)
    user = user_get(username)
    profile = team_profile(team)
    was_admin = profile.admins.filter(pk=user.pk).exists()
    if is_admin:
        _, joined = User.groups.through.objects.get_or_create(user=user, group=team)
        if joined:
            audit_team(actor, "team.member_added", team, after={"user": user.get_username()})
        profile.admins.add(user)
    else:
        profile.admins.remove(user)
    if was_admin != bool(is_admin):
        audit_team_admin_changed(actor, team, user, bool(is_admin))
    return team


@transaction.atomic
def team_default_set(*, actor: AbstractBaseUser, team_id: Any, resource_type: str, level: str) -> TeamDefaultGrant:
    """Give a team a level on every object of a type (MLflow's role permission on "*").
    Administrators only. Setting it again changes the level."""
    _require_superuser(actor, "set a team's default permission")
    team = team_get(team_id)
    permissions.root_model(resource_type)
    level = permissions.level_parse(level, allowed=(*permissions.LEVELS, permissions.DENY))
    old = TeamDefaultGrant.objects.select_for_update().filter(team=team, resource_type=resource_type).first()
    if old is not None and old.level == level:
        return old
    before = team_default_snapshot(old) if old is not None else None
    row, _ = TeamDefaultGrant.objects.update_or_create(team=team, resource_type=resource_type, defaults={"level": level})
    audit_team_default(actor, "team_default.set", row, before=before, after=team_default_snapshot(row))
    return row


@transaction.atomic
def team_default_remove(*, actor: AbstractBaseUser, row_id: int) -> None:
    _require_superuser(actor, "remove a team's default permission")
    row = TeamDefaultGrant.objects.select_for_update().select_related("team").filter(pk=row_id).first()
    if row is None:
        raise NotFound(f"Team default permission {row_id} not found")
    audit_team_default(actor, "team_default.removed", row, before=team_default_snapshot(row))
    row.delete()


@transaction.atomic
def team_default_add(*, actor: AbstractBaseUser, team_id: Any, resource_type: str, level: str) -> TeamDefaultGrant:
    """Give a team its default for a type if it has none yet (MLflow's role permission on
    "*": a second one is RESOURCE_ALREADY_EXISTS; services.team_default_set changes it).

    The service runs first, so rights and input are checked before the duplicate; a
    duplicate then rolls its change back.
    """
    team = Group.objects.select_for_update().filter(pk=team_get(team_id).pk).first()
    if team is None:
        raise NotFound(f"Team with id={team_id} not found")
    taken = TeamDefaultGrant.objects.filter(team=team, resource_type=resource_type).exists()
    row = team_default_set(actor=actor, team_id=team.pk, resource_type=resource_type, level=level)
    if taken:
        raise AlreadyExists(
            f"Team '{team.name}' already has a permission on every {resource_type}: update or remove it instead."
        )
    return row


@transaction.atomic
def user_password_change(
    *, actor: AbstractBaseUser, username: str, password: str, current_password: str | None
) -> AbstractBaseUser:
    """Set a password through services.user_update_password. Changing one's own needs the
    current one too (as MLflow 3 asks), so a leaked token or session cannot take the
    account over; an administrator setting someone else's does not."""
    user = user_get(username)
    if user.pk == actor.pk:
        if not current_password:
            raise InvalidParameter("Current password is required when changing your own password.")
        if not user.check_password(current_password):
            raise InvalidParameter("Current password does not match.")
        if password == current_password:
            raise InvalidParameter("New password must differ from the current password.")
    return user_update_password(actor=actor, username=username, password=password)


# ---------------------------------------------------------------- audit events
# The shapes of this module's events, shared with portal.admin (whose forms change the same
# rows). Each is called inside the transaction of its change. Users, teams, defaults and
# tokens concern no experiment or model, so only superusers read these events.


def user_snapshot(user: AbstractBaseUser) -> dict[str, Any]:
    return {
        "username": user.get_username(),
        "email": user.email,
        "is_admin": user.is_superuser,
        "is_active": user.is_active,
    }


def audit_user(actor: AbstractBaseUser | None, action: str, user: AbstractBaseUser, **snapshots: Any) -> None:
    audit.record(
        actor=actor, action=action, object_type="user", object_id=user.pk, object_name=user.get_username(), **snapshots
    )


def audit_user_deleted(actor: AbstractBaseUser | None, user: AbstractBaseUser) -> None:
    """Audit the deletion of `user` (call before deleting): user.deleted with the account and
    its teams, and grant.revoked for each grant that goes with it."""
    before = {**user_snapshot(user), "teams": sorted(user.groups.values_list("name", flat=True))}
    audit_user(actor, "user.deleted", user, before=before)
    permissions.audit_grants_removed(actor=actor, user=user)


def team_snapshot(team: Group) -> dict[str, Any]:
    profile = Team.objects.filter(group=team).first()
    return {"name": team.name, "description": profile.description if profile else ""}


def audit_team(actor: AbstractBaseUser | None, action: str, team: Group, **snapshots: Any) -> None:
    audit.record(actor=actor, action=action, object_type="team", object_id=team.pk, object_name=team.name, **snapshots)


def audit_team_admin_changed(
    actor: AbstractBaseUser | None, team: Group, user: AbstractBaseUser, is_admin: bool
) -> None:
    name = user.get_username()
    audit_team(
        actor,
        "team.admin_changed",
        team,
        before={"user": name, "admin": not is_admin},
        after={"user": name, "admin": is_admin},
    )


def audit_team_deleted(actor: AbstractBaseUser | None, team: Group) -> None:
    """Audit the deletion of `team` (call before deleting): team.deleted with its members,
    admins and defaults, and grant.revoked for each grant that goes with it."""
    profile = Team.objects.filter(group=team).first()
    before = {
        **team_snapshot(team),
        "members": sorted(team.user_set.values_list("username", flat=True)),
        "admins": sorted(profile.admins.values_list("username", flat=True)) if profile else [],
        "defaults": dict(team.default_grants.values_list("resource_type", "level")),
    }
    audit_team(actor, "team.deleted", team, before=before)
    permissions.audit_grants_removed(actor=actor, team=team)


def team_default_snapshot(row: TeamDefaultGrant) -> dict[str, Any]:
    return {"team": row.team.name, "resource_type": row.resource_type, "level": row.level}


def audit_team_default(actor: AbstractBaseUser | None, action: str, row: TeamDefaultGrant, **snapshots: Any) -> None:
    audit.record(
        actor=actor,
        action=action,
        object_type="team_default",
        object_id=permissions.team_default_id(row),  # the id the grant APIs give it
        object_name=row.team.name,
        **snapshots,
    )


def token_snapshot(token: ApiToken) -> dict[str, Any]:
    """A token as the log shows it: never the token or its digest, only what its owner sees in a list."""
    return {
        "name": token.name,
        "prefix": token.prefix,
        "user": token.user.get_username(),
        "revoked": not token.is_active,
    }


def audit_token(actor: AbstractBaseUser | None, action: str, token: ApiToken, **snapshots: Any) -> None:
    audit.record(
        actor=actor, action=action, object_type="token", object_id=token.pk, object_name=token.name, **snapshots
    )
