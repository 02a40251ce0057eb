"""Webhook secrets, encrypted at rest.

Signing a delivery needs the secret itself, so it cannot be stored as a digest the way API
tokens are. It is encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived
from SECRET_KEY with HKDF; SECRET_KEY_FALLBACKS still decrypt, so SECRET_KEY can be rotated
as Django documents it. A database dump alone does not reveal the secrets.
"""

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"mlportal webhook secrets v1"


class SecretUnreadable(Exception):
    """The stored secret does not decrypt with SECRET_KEY or its fallbacks."""


def _derive(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_derive(key) for key in keys])


def _current() -> MultiFernet:
    return _fernet((settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])))


def secret_encrypt(secret: str) -> str:
    """The token to store for `secret` ("" for no secret)."""
    if not secret:
        return ""
    return _current().encrypt(secret.encode()).decode("ascii")


def secret_decrypt(token: str) -> str:
    """The secret a stored token holds ("" for none)."""
    if not token:
        return ""
    try:
        return _current().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable(
            "The webhook's secret cannot be decrypted (was SECRET_KEY changed without keeping the old "
            "one in SECRET_KEY_FALLBACKS?): set the secret again."
        ) from None
