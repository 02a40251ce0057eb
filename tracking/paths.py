"""Paths in the portal's artifact store: the one rule that keeps a path inside its root.

Every path or URI that may end up naming a file in the store (an artifact path from the
proxy, a model version's source) is confined by `path_confine` before anything looks it up.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable

# The scheme of the portal's own store, as the artifact proxy and the client spell it.
ARTIFACT_SCHEME = "mlflow-artifacts"

# Control characters and DEL, the backslash (a separator on Windows), and ';', '#', '?',
# which end a URL's path: a later component that parses the path as a URL would cut it there.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\;#?]")
_MAX_DECODE_ROUNDS = 4


def path_confine(path: str, invalid: Callable[[str], Exception]) -> None:
    """Raise `invalid(why)` if `path` could climb out of the directory it is resolved in.

    Refused: the characters above, an absolute path, `.` and `..` segments, in the path as
    given and in every form that percent-decoding it (once, or again and again, as a proxy,
    a storage backend or a person copying a URL might) turns it into; also a path that
    still decodes further after a few rounds. The path itself is not changed.
    """
    candidate = path
    for _ in range(_MAX_DECODE_ROUNDS):
        bad = _FORBIDDEN.search(candidate)
        if bad:
            raise invalid(f"the character {bad.group()!r} is not allowed")
        if candidate.startswith("/"):
            raise invalid("the path must be relative")
        if any(segment in (".", "..") for segment in candidate.split("/")):
            raise invalid("'.' and '..' segments are not allowed")
        decoded = urllib.parse.unquote(candidate, errors="replace") if "%" in candidate else candidate
        if decoded == candidate:
            return
        candidate = decoded
    raise invalid("too many levels of percent-encoding")


def store_path(uri: str | None) -> str | None:
    """The path (`a/b/c`) of an `mlflow-artifacts:/<path>` URI in the portal's store.

    None for every other URI: another scheme, or one with a host, query or fragment.
    """
    parsed = urllib.parse.urlparse(uri or "")
    if parsed.scheme != ARTIFACT_SCHEME or parsed.netloc or parsed.query or parsed.fragment:
        return None
    return "/".join(segment for segment in parsed.path.split("/") if segment)
