"""Account services: API tokens, users, teams (Django groups) and their members, admins and defaults.

Grants on experiments and registered models are portal.permissions' (grant_create, ...).
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

from portal import permissions
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
    return CreatedToken(token=token, raw=raw)


@transaction.atomic
def api_token_revoke(*, user: AbstractBaseUser, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens. Idempotent: revoking twice keeps the first time."""
    token = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
    if token is None:
        raise NotFound(f"Token {token_id} does not exist.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
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
    return user


@transaction.atomic
def user_update_password(*, actor: AbstractBaseUser, username: str, password: str) -> AbstractBaseUser:
    """Set a password: one's own, or anyone's for an administrator."""
    user = user_get(username)
    if user.pk != actor.pk:
        _require_superuser(actor, "change another user's password")
    user.set_password(_password_validated(password, user))
    user.save(update_fields=["password"])
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
    user.is_superuser = user.is_staff = bool(is_admin)
    user.save(update_fields=["is_superuser", "is_staff"])
    return user


@transaction.atomic
def user_delete(*, actor: AbstractBaseUser, username: str) -> None:
    """Delete an account with its tokens, memberships and grants. Administrators only, and
    not oneself (an administrator cannot lock everyone out by accident)."""
    _require_superuser(actor, "delete users")
    user = user_get(username)
    if user.pk == actor.pk:
        raise Conflict("You cannot delete your own account.")
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
    return team


@transaction.atomic
def team_delete(*, actor: AbstractBaseUser, team_id: Any) -> None:
    """Delete a team with its memberships, grants and defaults. Administrators only."""
    _require_superuser(actor, "delete teams")
    team_get(team_id).delete()


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
    membership, _ = User.groups.through.objects.get_or_create(user=user, group=team)
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
    team_profile(team).admins.remove(user)


@transaction.atomic
def team_admin_set(*, actor: AbstractBaseUser, team_id: Any, username: str, is_admin: bool) -> Group:
    """Make a user an admin of a team (and a member), or not. Administrators only."""
    _require_superuser(actor, "choose team admins")
    team = team_get(team_id)
    user = user_get(username)
    profile = team_profile(team)
    if is_admin:
        User.groups.through.objects.get_or_create(user=user, group=team)
        profile.admins.add(user)
    else:
        profile.admins.remove(user)
    return team


@transaction.atomic
def team_default_set(*, actor: AbstractBaseUser, team_id: Any, resource_type: str, level: str) -> TeamDefaultGrant:
    """Give a team a level on every object of a type (MLflow's role permission on "*").
    Administrators only. Setting it again changes the level."""
    _require_superuser(actor, "set a team's default permission")
    team = team_get(team_id)
    permissions.root_model(resource_type)
    level = permissions.level_parse(level, allowed=(*permissions.LEVELS, permissions.DENY))
    row, _ = TeamDefaultGrant.objects.update_or_create(team=team, resource_type=resource_type, defaults={"level": level})
    return row


@transaction.atomic
def team_default_remove(*, actor: AbstractBaseUser, row_id: int) -> None:
    _require_superuser(actor, "remove a team's default permission")
    deleted, _ = TeamDefaultGrant.objects.filter(pk=row_id).delete()
    if not deleted:
        raise NotFound(f"Team default permission {row_id} not found")


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
