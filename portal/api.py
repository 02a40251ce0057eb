"""DRF defaults for the native API (/api/v1/): header authentication, one exception
handler, cursor pagination.

DRF imports this module while rest_framework.views is still loading (the settings name
HeaderAuthentication), so nothing here may import rest_framework.views or anything that
does (routers, generics, drf-spectacular's views) at module level.
"""

import base64
import binascii
import json
from bisect import bisect_left, bisect_right
from typing import Any

from rest_framework import authentication, exceptions, pagination, permissions
from rest_framework.utils.urls import replace_query_param

from portal import errors
from portal.auth import user_from_authorization

NATIVE_API_CHALLENGE = 'Bearer realm="mlportal"'


class HeaderAuthentication(authentication.BaseAuthentication):
    """Bearer API tokens and HTTP Basic, the same as on the MLflow door.

    `request.auth` is the scheme that signed the request in ("bearer" or "basic"), so a
    view can tell a token from a password (see PasswordOrSession)."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        try:
            user = user_from_authorization(header)
        except errors.Unauthenticated as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None
        return (user, header.strip().partition(" ")[0].lower())

    def authenticate_header(self, request):
        # A Bearer challenge: browsers show no password prompt for it, so they never cache
        # Basic credentials for the native API that another site could make them send.
        return NATIVE_API_CHALLENGE


class PasswordOrSession(permissions.BasePermission):
    """Signed in with a password (HTTP Basic) or a browser session, not an API token.

    For what a leaked token must not be able to do: mint further tokens that outlive its
    revocation."""

    message = "An API token cannot do this: use HTTP Basic or a signed-in session."

    def has_permission(self, request, view):
        return request.auth != "bearer"


_STATUS = {
    errors.InvalidParameter: exceptions.ValidationError,
    errors.NotFound: exceptions.NotFound,
    errors.PermissionDenied: exceptions.PermissionDenied,
    errors.Unauthenticated: exceptions.NotAuthenticated,
}


class ConflictError(exceptions.APIException):
    status_code = 409
    default_code = "conflict"


def exception_handler(exc, context):
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, errors.PortalError):
        for kind, drf_kind in _STATUS.items():
            if isinstance(exc, kind):
                exc = drf_kind(exc.message)
                break
        else:
            exc = ConflictError(exc.message)
    return drf_exception_handler(exc, context)


def valid_input(serializer_class, data) -> dict:
    """`data` checked by an input serializer: its validated data, or a 400."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# ---------------------------------------------------------------- pagination


class CursorPagination(pagination.CursorPagination):
    """Cursor pagination for every list of the native API.

    Each view names a unique, stable key in `cursor_ordering` (a field, "-field" for
    descending), so a page never repeats or skips a row when rows come and go between
    requests."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = "pk"

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "cursor_ordering", self.ordering)
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)


class ListCursorPagination(CursorPagination):
    """The same pages and links over a short list built in Python (the grants on one object,
    its holders). The view gives `cursor_key(item)`, unique per item and JSON-encodable;
    a cursor is the key to continue after (or, going back, before)."""

    def paginate_queryset(self, queryset, request, view=None):
        key = view.cursor_key
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        items = sorted(queryset, key=key)
        keys = [key(item) for item in items]
        before, position = self._decode(request)
        try:
            if position is None:
                start, end = 0, self.page_size
            elif before:
                end = bisect_left(keys, position)
                start = max(0, end - self.page_size)
            else:
                start = bisect_right(keys, position)
                end = start + self.page_size
        except TypeError:  # a forged cursor whose key does not compare with ours
            raise exceptions.NotFound(self.invalid_cursor_message) from None
        end = min(end, len(items))
        self.next_key = keys[end - 1] if end < len(items) and end > start else None
        self.previous_key = keys[start] if 0 < start < len(items) else None
        return items[start:end]

    def _decode(self, request) -> tuple[bool, Any]:
        encoded = request.query_params.get(self.cursor_query_param)
        if not encoded:
            return False, None
        try:
            cursor = json.loads(base64.urlsafe_b64decode(encoded.encode("ascii")))
            before, position = bool(cursor["b"]), cursor["k"]
        except (binascii.Error, UnicodeError, ValueError, TypeError, KeyError):
            raise exceptions.NotFound(self.invalid_cursor_message) from None
        return before, tuple(position) if isinstance(position, list) else position

    def _link(self, before: bool, position: Any) -> str | None:
        if position is None:
            return None
        encoded = base64.urlsafe_b64encode(json.dumps({"b": int(before), "k": position}).encode()).decode()
        return replace_query_param(self.base_url, self.cursor_query_param, encoded)

    def get_next_link(self):
        return self._link(False, self.next_key)

    def get_previous_link(self):
        return self._link(True, self.previous_key)

