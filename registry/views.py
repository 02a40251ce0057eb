"""Pages of the approval workflow: the requests waiting for the signed-in user, and one
request with its decisions and the buttons the user may press. The MLflow door's
PERMISSION_DENIED names the request page's URL."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from portal import routes
from portal.errors import NotFound, PortalError
from registry import selectors, services
from registry.models import TransitionRequest
from registry.services import policies


@routes.route_rule(routes.AUTHENTICATED)
@login_required
@require_GET
def transition_request_list_page(request: HttpRequest) -> HttpResponse:
    pending = selectors.transition_requests_for_user(request.user, state=TransitionRequest.State.PENDING)[:200]
    to_decide = policies.to_decide(request.user, pending)
    mine = selectors.transition_requests_for_user(request.user, mine=True)[:50]
    return render(request, "registry/transition_requests.html", {"to_decide": to_decide, "mine": mine})


@routes.route_rule(routes.AUTHENTICATED)
@login_required
@require_GET
def transition_request_page(request: HttpRequest, request_id: int) -> HttpResponse:
    try:
        found = selectors.transition_request_get_for_user(request.user, request_id)
    except NotFound:
        raise Http404("No such transition request.") from None
    policy = policies.policy_for(found.registered_model)
    context = {
        "req": found,
        "decisions": found.decisions.select_related("reviewer").order_by("id"),
        "actions": policies.available_actions(request.user, found, policy),
        "policy": policy,
        "approvals": found.decisions.filter(decision="approve").count(),
    }
    return render(request, "registry/transition_request.html", context)


@routes.route_rule(routes.AUTHENTICATED)
@login_required
@require_POST
def transition_request_decide_page(request: HttpRequest, request_id: int, action: str) -> HttpResponse:
    decide = services.DECISIONS.get(action)
    if decide is None:
        raise Http404("No such action.")
    try:
        decide(actor=request.user, request_id=request_id, comment=request.POST.get("comment", ""))
        messages.success(request, f"Transition request {request_id}: {action} done.")
    except NotFound:
        raise Http404("No such transition request.") from None
    except PortalError as exc:
        messages.error(request, exc.message)
    return redirect("transition-request-page", request_id=request_id)
