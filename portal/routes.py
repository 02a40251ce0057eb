"""Deny by default: every route declares the rule that guards it.

A view declares its rule with @route_rule(...) (or an `access_rule` attribute on a class
view). RouteRuleMiddleware refuses any request whose view has no rule, and a test walks the
whole URL configuration and fails on any route without one. The rules are coarse gates
(who may reach the route at all); object permissions are checked by the services through
portal.permissions.
"""

from collections.abc import Callable
from typing import Any

PUBLIC = "public"  # anyone, signed in or not (login page, health check)
AUTHENTICATED = "authenticated"  # any active signed-in user; services check objects
STAFF = "staff"  # is_staff users
ADMIN_SITE = "admin-site"  # Django's admin, which runs its own staff check on every view
# The native API (/api/v1/): the view's DRF authentication and permission classes decide,
# because DRF authenticates the Authorization header there (the middleware does not, so it
# cannot judge). Only DRF views (APIView subclasses) may declare it: rule_for() ignores it
# on anything else, and such a route is refused like one without a rule.
API = "api"

RULES = {PUBLIC, AUTHENTICATED, STAFF, ADMIN_SITE, API}


def route_rule(rule: str) -> Callable[[Any], Any]:
    if rule not in RULES:
        raise ValueError(f"unknown route rule {rule!r}")

    def decorate(view: Any) -> Any:
        view.access_rule = rule
        return view

    return decorate


def rule_for(view: Any, namespace: str = "") -> str | None:
    """The rule that guards `view`, or None if it declares none (or declares API without
    being a DRF view)."""
    # DRF's as_view() (APIView and every viewset action) and Django's class views keep the
    # class on the function.
    view_class = getattr(view, "cls", None) or getattr(view, "view_class", None)
    rule = getattr(view, "access_rule", None)
    if rule is None:
        rule = getattr(view_class, "access_rule", None)
    if rule is None and namespace.split(":")[0] == "admin":
        rule = ADMIN_SITE
    if rule == API and not _is_drf_view(view_class):
        return None
    return rule if rule in RULES else None


def _is_drf_view(view_class: Any) -> bool:
    from rest_framework.views import APIView

    return isinstance(view_class, type) and issubclass(view_class, APIView)
