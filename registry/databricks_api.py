"""Databricks' workspace-registry approval API on the MLflow door, as databricks-sdk's
`WorkspaceClient().model_registry` calls it (`databricks.sdk.service.ml.ModelRegistryAPI`):

    POST   transition-requests/create   {name, version, stage, comment}     -> {"request": TransitionRequest}
    POST   transition-requests/approve  {name, version, stage, archive_existing_versions, comment}
                                                                              -> {"activity": Activity}
    POST   transition-requests/reject   {name, version, stage, comment}     -> {"activity": Activity}
    DELETE transition-requests/delete   ?name&version&stage&creator&comment -> {"activity": Activity}
    GET    transition-requests/list     ?name&version                       -> {"requests": [Activity]}
    POST   comments/create              {name, version, comment}            -> {"comment": CommentObject}
    PATCH  comments/update              {id, comment}                       -> {"comment": CommentObject}
    DELETE comments/delete              ?id                                 -> {}

The same services as every other door (registry.services.requests and comments). How
Databricks' model maps onto the portal's:

- Databricks names a request by its version, target stage and creator, not by an id:
  approve and reject act on the version's pending request for that stage (there is at
  most one: asking again returns the open one, whoever opened it), delete on the open
  request of that stage by `creator`. None: RESOURCE_DOES_NOT_EXIST.
- create opens a request for any stage, protected or not. An approval counts toward the
  model's policy (registry.services.policies); the change is applied by the Celery task
  once the policy is met (at once where tasks run eagerly), which the approval's
  `system_comment` reports. The requester's own approval is PERMISSION_DENIED.
- approve's `archive_existing_versions` (Databricks' approver decides it) turns the flag
  on for the request; false leaves what the requester asked (transition_request_approve).
- list shows the version's pending stage requests. delete also withdraws a request that
  is approved but not yet applied, or failed (the requester's cancel).
- Databricks' DELETE calls put their parameters in the query string, not in a JSON body
  (portal.mlflow_http.Params reads it then).
"""

from typing import Any

from django.http import HttpRequest
from django.urls import path

from portal.errors import NotFound
from portal.mlflow_http import Params, mlflow_endpoint
from registry import databricks_json, selectors, services
from registry.models import Approval, TransitionRequest
from registry.services import comments as comment_services
from registry.services import policies
from registry.services.requests import OPEN_STATES

Json = dict[str, Any]
State = TransitionRequest.State


def _version_key(params: Params) -> tuple[str, str]:
    return params.str("name", required=True), params.str("version", required=True)


def _stage_request(request: HttpRequest, params: Params, *, states=(State.PENDING,), creator: str | None = None):
    name, version = _version_key(params)
    stage = params.str("stage", required=True)
    found = selectors.stage_requests_of_version_for_user(
        request.user, name, version, states=states, stage=stage, requester=creator
    ).first()
    if found is None:
        by = f" by {creator}" if creator is not None else ""
        raise NotFound(f"No open transition request{by} to move version {version} of '{name}' to {stage}.")
    return found


def _decision_of(transition_request: TransitionRequest, user) -> Approval:
    return transition_request.decisions.select_related("reviewer").get(reviewer=user)


def _after_approval(transition_request: TransitionRequest) -> str:
    """What the approval led to, for the activity's system_comment."""
    transition_request.refresh_from_db()
    state = transition_request.state
    if state == State.APPLIED:
        archived = " (other versions in that stage archived)" if transition_request.archive_existing_versions else ""
        return f"Applied: version {transition_request.version_number} is now in {transition_request.target}{archived}."
    if state == State.APPROVED:
        return "Approved: the portal's worker applies the transition shortly."
    if state == State.PENDING:
        approvals = transition_request.decisions.filter(decision=Approval.Decision.APPROVE).count()
        required = policies.policy_for(transition_request.registered_model).approvals_required
        return f"{approvals} of {required} required approvals; the request stays open."
    reason = f": {transition_request.state_reason}" if transition_request.state_reason else "."
    return f"The request is {state}{reason}"


# ---------------------------------------------------------------- transition requests


def create_transition_request(request: HttpRequest, params: Params) -> Json:
    name, version = _version_key(params)
    opened, _created = services.transition_request_create(
        actor=request.user,
        name=name,
        version=version,
        stage=params.str("stage", required=True),
        comment=params.str("comment"),
    )
    actions = policies.available_actions(request.user, opened)
    return {"request": databricks_json.transition_request_json(opened, actions)}


def approve_transition_request(request: HttpRequest, params: Params) -> Json:
    pending = _stage_request(request, params)
    approved = services.transition_request_approve(
        actor=request.user,
        request_id=pending.pk,
        comment=params.str("comment"),
        archive_existing_versions=params.bool("archive_existing_versions"),
    )
    decision = _decision_of(approved, request.user)
    outcome = _after_approval(approved)
    return {"activity": databricks_json.decision_activity_json(approved, decision, outcome)}


def reject_transition_request(request: HttpRequest, params: Params) -> Json:
    pending = _stage_request(request, params)
    rejected = services.transition_request_reject(
        actor=request.user, request_id=pending.pk, comment=params.str("comment")
    )
    return {"activity": databricks_json.decision_activity_json(rejected, _decision_of(rejected, request.user))}


def delete_transition_request(request: HttpRequest, params: Params) -> Json:
    found = _stage_request(request, params, states=OPEN_STATES, creator=params.str("creator", required=True))
    comment = params.str("comment") or ""
    cancelled = services.transition_request_cancel(actor=request.user, request_id=found.pk, comment=comment)
    return {"activity": databricks_json.cancelled_activity_json(cancelled, request.user, comment)}


def list_transition_requests(request: HttpRequest, params: Params) -> Json:
    name, version = _version_key(params)
    pending = selectors.stage_requests_of_version_for_user(request.user, name, version)
    shown = [databricks_json.requested_activity_json(r, policies.available_actions(request.user, r)) for r in pending]
    return {"requests": shown}


# ---------------------------------------------------------------- comments on versions


def _comment_id(params: Params) -> int:
    value = params.str("id", required=True)
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 0 < number < 2**63:
        raise NotFound(f"Comment {value} not found")
    return number


def _comment_json(user, comment) -> Json:
    return databricks_json.comment_json(
        comment,
        may_edit=comment_services.comment_may_edit(user, comment),
        may_delete=comment_services.comment_may_delete(user, comment),
    )


def create_comment(request: HttpRequest, params: Params) -> Json:
    name, version = _version_key(params)
    comment = services.comment_add(
        actor=request.user, name=name, version=version, text=params.str("comment", required=True)
    )
    return {"comment": _comment_json(request.user, comment)}


def update_comment(request: HttpRequest, params: Params) -> Json:
    comment = services.comment_edit(
        actor=request.user, comment_id=_comment_id(params), text=params.str("comment", required=True)
    )
    return {"comment": _comment_json(request.user, comment)}


def delete_comment(request: HttpRequest, params: Params) -> Json:
    services.comment_delete(actor=request.user, comment_id=_comment_id(params))
    return {}


urlpatterns = [
    path("transition-requests/create", mlflow_endpoint({"POST": create_transition_request})),
    path("transition-requests/approve", mlflow_endpoint({"POST": approve_transition_request})),
    path("transition-requests/reject", mlflow_endpoint({"POST": reject_transition_request})),
    path(
        "transition-requests/delete",
        mlflow_endpoint({"DELETE": delete_transition_request}),
    ),
    path("transition-requests/list", mlflow_endpoint({"GET": list_transition_requests})),
    path("comments/create", mlflow_endpoint({"POST": create_comment})),
    path("comments/update", mlflow_endpoint({"PATCH": update_comment})),
    path("comments/delete", mlflow_endpoint({"DELETE": delete_comment})),
]
