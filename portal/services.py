"""Account services: API tokens."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from portal.errors import InvalidParameter, NotFound
from portal.models import ApiToken

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
