"""JSON of Databricks' workspace-registry approval API, in the field names of databricks-sdk
(`databricks.sdk.service.ml`: TransitionRequest, Activity, CommentObject).

As the SDK's `as_dict` does, a field without a value is left out rather than sent as null.
Activity ids are opaque strings naming the row that recorded the activity:
`request-<id>` (requested), `request-<id>-cancelled`, `decision-<id>` (approved or
rejected). Comment ids are the comment's id as a string: the SDK sends them back to
update and delete.
"""

from datetime import datetime
from typing import Any

from registry.models import Approval, Comment, TransitionRequest

Json = dict[str, Any]

# registry.services.policies.available_actions names -> Databricks' ActivityAction. `retry` (of a
# failed apply) has no Databricks counterpart: Databricks applies on approval.
REQUEST_ACTIONS = {
    "approve": "APPROVE_TRANSITION_REQUEST",
    "reject": "REJECT_TRANSITION_REQUEST",
    "cancel": "CANCEL_TRANSITION_REQUEST",
}

REQUESTED_TRANSITION = "REQUESTED_TRANSITION"
APPROVED_REQUEST = "APPROVED_REQUEST"
REJECTED_REQUEST = "REJECTED_REQUEST"
CANCELLED_REQUEST = "CANCELLED_REQUEST"
DECISION_ACTIVITY = {Approval.Decision.APPROVE: APPROVED_REQUEST, Approval.Decision.REJECT: REJECTED_REQUEST}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _without_empty(data: Json) -> Json:
    return {key: value for key, value in data.items() if value is not None and value != []}


def request_actions(actions: list[str]) -> list[str]:
    return [REQUEST_ACTIONS[action] for action in actions if action in REQUEST_ACTIONS]


def transition_request_json(request: TransitionRequest, actions: list[str]) -> Json:
    """A request as Databricks' TransitionRequest (create's answer); `actions` are
    registry.services.policies.available_actions for the caller."""
    return _without_empty(
        {
            "available_actions": request_actions(actions),
            "comment": request.comment,
            "creation_timestamp": request.creation_timestamp,
            "to_stage": request.target,
            "user_id": request.requester.get_username() if request.requester else None,
        }
    )


def requested_activity_json(request: TransitionRequest, actions: list[str]) -> Json:
    """An open request as list answers it: the SDK reads each as an Activity
    (REQUESTED_TRANSITION); Databricks also sends the caller's available_actions."""
    return _without_empty(
        {
            **transition_request_json(request, actions),
            "activity_type": REQUESTED_TRANSITION,
            "id": f"request-{request.pk}",
            "from_stage": request.from_stage or None,
            "last_updated_timestamp": request.last_updated_timestamp,
        }
    )


def decision_activity_json(request: TransitionRequest, decision: Approval, system_comment: str | None = None) -> Json:
    """An approval or rejection of `request` as an Activity."""
    return _without_empty(
        {
            "activity_type": DECISION_ACTIVITY[decision.decision],
            "comment": decision.comment,
            "creation_timestamp": decision.timestamp,
            "from_stage": request.from_stage or None,
            "id": f"decision-{decision.pk}",
            "last_updated_timestamp": decision.timestamp,
            "system_comment": system_comment,
            "to_stage": request.target,
            "user_id": decision.reviewer.get_username() if decision.reviewer else None,
        }
    )


def cancelled_activity_json(request: TransitionRequest, actor, comment: str) -> Json:
    """The cancellation of `request` by `actor` as an Activity."""
    return _without_empty(
        {
            "activity_type": CANCELLED_REQUEST,
            "comment": comment,
            "creation_timestamp": request.last_updated_timestamp,
            "from_stage": request.from_stage or None,
            "id": f"request-{request.pk}-cancelled",
            "last_updated_timestamp": request.last_updated_timestamp,
            "to_stage": request.target,
            "user_id": actor.get_username(),
        }
    )


def comment_json(comment: Comment, *, may_edit: bool, may_delete: bool) -> Json:
    """A comment as Databricks' CommentObject, with what the caller may do to it."""
    actions = (["EDIT_COMMENT"] if may_edit else []) + (["DELETE_COMMENT"] if may_delete else [])
    return _without_empty(
        {
            "available_actions": actions,
            "comment": comment.text,
            "creation_timestamp": _ms(comment.created_at),
            "id": str(comment.pk),
            "last_updated_timestamp": _ms(comment.updated_at),
            "user_id": comment.author.get_username() if comment.author else None,
        }
    )
