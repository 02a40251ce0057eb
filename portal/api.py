"""DRF defaults for the native API: header authentication and one exception handler."""

from rest_framework import authentication, exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from portal import errors
from portal.auth import WWW_AUTHENTICATE, user_from_authorization


class HeaderAuthentication(authentication.BaseAuthentication):
    """Bearer API tokens and HTTP Basic, the same as on the MLflow door."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        try:
            return (user_from_authorization(header), None)
        except errors.Unauthenticated as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None

    def authenticate_header(self, request):
        return WWW_AUTHENTICATE


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
    if isinstance(exc, errors.PortalError):
        for kind, drf_kind in _STATUS.items():
            if isinstance(exc, kind):
                exc = drf_kind(exc.message)
                break
        else:
            exc = ConflictError(exc.message)
    return drf_exception_handler(exc, context)
