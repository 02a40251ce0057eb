"""Authentication from the Authorization header: personal API tokens (Bearer) and HTTP
Basic with username and password, as the mlflow client sends them on every call.

Basic is made cheap without weakening it: a successful password check is remembered for
BASIC_AUTH_CACHE_SECONDS under a keyed hash of the credentials (never the password), and
the remembered entry is bound to the user's current password hash and active flag, so a
password change or deactivation invalidates it at once.
"""

import base64
import binascii
import hashlib
import hmac

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache

from portal.errors import Unauthenticated
from portal.services import api_token_authenticate

WWW_AUTHENTICATE = 'Basic realm="mlportal", charset="UTF-8"'


def _credential_key(username: str, password: str) -> str:
    mac = hmac.new(settings.SECRET_KEY.encode(), f"{username}\0{password}".encode(), hashlib.sha256)
    return "basic-auth:" + mac.hexdigest()


def _password_fingerprint(user: AbstractBaseUser) -> str:
    return hashlib.sha256(user.password.encode()).hexdigest()[:32]


def _basic_user(username: str, password: str) -> AbstractBaseUser:
    key = _credential_key(username, password)
    remembered = cache.get(key)
    if remembered is not None:
        user_id, fingerprint = remembered
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if user is not None and hmac.compare_digest(_password_fingerprint(user), fingerprint):
            return user
        cache.delete(key)
    user = authenticate(request=None, username=username, password=password)
    if user is None or not user.is_active:
        raise Unauthenticated("Invalid username or password.")
    cache.set(key, (user.pk, _password_fingerprint(user)), settings.BASIC_AUTH_CACHE_SECONDS)
    return user


def user_from_authorization(header: str) -> AbstractBaseUser:
    """The user an Authorization header names. Raises Unauthenticated if it names nobody."""
    scheme, _, credentials = header.strip().partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme == "bearer":
        token = api_token_authenticate(credentials) if credentials else None
        if token is None:
            raise Unauthenticated("Invalid or revoked API token.")
        return token.user
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("Malformed HTTP Basic credentials.") from None
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            raise Unauthenticated("Malformed HTTP Basic credentials.")
        return _basic_user(username, password)
    raise Unauthenticated("Unsupported authorization scheme; use Bearer <token> or Basic.")
