import json

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse

from portal import routes
from portal.auth import WWW_AUTHENTICATE, user_from_authorization
from portal.errors import Unauthenticated

# The Authorization header (tokens, HTTP Basic) opens the API doors only; pages need a
# signed-in session, so a leaked token is never a web session (token list, admin).
HEADER_PREFIXES = ("/api/", "/ajax-api/")
# The MLflow door authenticates by header only. Ignoring the session cookie there means a
# page on another site can never ride a signed-in browser into the JSON API (no CSRF).
HEADER_ONLY_PREFIXES = ("/api/2.0/", "/api/3.0/", "/ajax-api/")
# The native API authenticates through DRF (header or session, with CSRF for sessions),
# once, in its own authentication classes: the middleware leaves request.user alone there.
NATIVE_API_PREFIX = "/api/v1/"


def unauthenticated_response(message: str) -> HttpResponse:
    body = json.dumps({"error_code": "UNAUTHENTICATED", "message": message})
    response = HttpResponse(body, status=401, content_type="application/json")
    response["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


def is_api_path(path: str) -> bool:
    return path.startswith("/api/") or path.startswith("/ajax-api/")


class ApiAuthenticationMiddleware:
    """Sets request.user from an Authorization header (Bearer token or HTTP Basic) on the
    API doors; on pages the header is ignored."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path
        if path.startswith(NATIVE_API_PREFIX) or not path.startswith(HEADER_PREFIXES):
            return self.get_response(request)
        header = request.META.get("HTTP_AUTHORIZATION")
        if header:
            try:
                request.user = user_from_authorization(header)
            except Unauthenticated as exc:
                return unauthenticated_response(exc.message)
            request.authenticated_by_header = True
        elif path.startswith(HEADER_ONLY_PREFIXES):
            request.user = AnonymousUser()
        return self.get_response(request)


class RouteRuleMiddleware:
    """Enforces each route's declared rule; a route without one is refused."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        rule = routes.rule_for(view_func, match.namespace if match else "")
        if rule is None:
            return HttpResponse("This route declares no access rule.", status=403, content_type="text/plain")
        # API: DRF authenticates and runs the view's permission classes (401 with
        # WWW-Authenticate, or 403); the middleware has not seen the header there.
        if rule in (routes.PUBLIC, routes.ADMIN_SITE, routes.API):
            return None
        user = request.user
        if not (user.is_authenticated and user.is_active):
            if is_api_path(request.path):
                return unauthenticated_response("Authentication required: send a Bearer token or HTTP Basic credentials.")
            # redirect_to_login quotes `next`, so a query string survives the round trip.
            return redirect_to_login(request.get_full_path())
        if rule == routes.STAFF and not user.is_staff:
            return HttpResponse("Staff only.", status=403, content_type="text/plain")
        return None


class AuditContextMiddleware:
    """Makes the request's id and client address available to portal.audit.record() (a
    context variable, so each thread or task sees its own) and echoes the id back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from portal import audit

        context = audit.request_context_from(request)
        token = audit.request_context_set(context)
        try:
            response = self.get_response(request)
        finally:
            audit.request_context_reset(token)
        response["X-Request-ID"] = context.request_id
        return response
