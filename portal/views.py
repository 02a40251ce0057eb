from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal import routes, services
from portal.errors import PortalError
from portal.models import ApiToken


@routes.route_rule(routes.PUBLIC)
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@routes.route_rule(routes.AUTHENTICATED)
@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


login_view = routes.route_rule(routes.PUBLIC)(
    auth_views.LoginView.as_view(template_name="portal/login.html", redirect_authenticated_user=True)
)
logout_view = routes.route_rule(routes.PUBLIC)(auth_views.LogoutView.as_view())


@routes.route_rule(routes.AUTHENTICATED)
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    created = None
    if request.method == "POST":
        try:
            created = services.api_token_create(user=request.user, name=request.POST.get("name", ""))
        except PortalError as exc:
            messages.error(request, exc.message)
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "portal/tokens.html", {"tokens": tokens, "created": created})


@routes.route_rule(routes.AUTHENTICATED)
@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = services.api_token_revoke(user=request.user, token_id=token_id)
        messages.success(request, f"Token “{token.name}” revoked.")
    except PortalError as exc:
        messages.error(request, exc.message)
    return redirect("token-list")
