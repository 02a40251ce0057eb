"""Email about transition requests (Django's email backend: the console on the embedded
default, SMTP when configured).

- Approvers (who may decide it, registry.services.policies.deciders_of) when a request opens.
- The requester on each decision (approved, rejected) and on the outcome (applied, failed).
- The model's watchers when a change is applied.

Called by the services inside their transaction: the recipients are read there, the
messages are sent by a task once the transaction commits (a rolled-back change mails
nobody), `robust` so a broker outage never fails the change itself.
"""

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from portal import permissions
from registry.models import ModelWatch, TransitionRequest


def request_page_url(request: TransitionRequest) -> str:
    return settings.PORTAL_BASE_URL + reverse("transition-request-page", args=[request.pk])


def _describe(request: TransitionRequest) -> str:
    return f"{request.registered_model.name} version {request.version_number}: {request.target_label}"


def _send(subject: str, body: str, users, model) -> None:
    """Mail `users` who may still read `model` (a watcher or requester who lost access hears
    nothing more about it)."""
    recipients = sorted({
        u.email for u in users
        if u is not None and u.is_active and u.email and permissions.can(u, permissions.READ, model)
    })
    if not recipients:
        return
    from registry import tasks

    transaction.on_commit(lambda: tasks.email_send.delay(subject, body, recipients), robust=True)


def request_opened(request: TransitionRequest, policy) -> None:
    from registry.services.policies import deciders_of

    requester = request.requester.get_username() if request.requester else "someone"
    body = (
        f"{requester} asks for {_describe(request)}.\n\n"
        + (f"Comment: {request.comment}\n\n" if request.comment else "")
        + f"Approve or reject it: {request_page_url(request)}\n"
    )
    deciders = [u for u in deciders_of(request, policy) if u.pk != request.requester_id]
    _send(f"[mlportal] {request} needs your decision: {_describe(request)}", body, deciders,
          request.registered_model)


def request_decided(request: TransitionRequest, reviewer, decision: str, comment: str) -> None:
    body = (
        f"{reviewer.get_username()} {decision} {request} ({_describe(request)}).\n"
        + (f"Comment: {comment}\n" if comment else "")
        + f"State: {request.state}.\n\n{request_page_url(request)}\n"
    )
    _send(f"[mlportal] {request} {decision}: {_describe(request)}", body, [request.requester],
          request.registered_model)


def request_applied(request: TransitionRequest) -> None:
    body = f"{request} was applied: {_describe(request)}.\n\n{request_page_url(request)}\n"
    watchers = [w.user for w in ModelWatch.objects.filter(registered_model=request.registered_model)
                .select_related("user")]
    _send(f"[mlportal] Applied: {_describe(request)}", body, [request.requester, *watchers],
          request.registered_model)


def request_failed(request: TransitionRequest) -> None:
    body = (
        f"{request} ({_describe(request)}) could not be applied: {request.state_reason}\n"
        f"An approver may retry it: {request_page_url(request)}\n"
    )
    _send(f"[mlportal] Failed: {_describe(request)}", body, [request.requester],
          request.registered_model)
