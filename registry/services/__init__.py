"""Registry services: every change to registered models, versions, aliases, stages,
transition requests, policies and comments.

Access (portal.permissions): any signed-in user may create a registered model and gets
MANAGE on it. Changing a model, its tags, its aliases, its versions (stages, descriptions,
tags) and creating versions need EDIT on the registered model; deleting the model or a
version, and editing its approval policy, need MANAGE; deciding a transition request needs
APPROVE (registry.services.policies.may_decide). Comments need READ.

Locking: a service that changes a model or its versions locks the registered model row
first (selectors.registered_model_lock_for_user, or _common.model_lock by id), then version
and request rows. Version numbers come from a counter on the locked model row. On SQLite
the portal's transactions are IMMEDIATE, which serialises writers instead.

Governed changes (stages, aliases) have two steps: the entry points in `changes` (validate,
lock, check, policy gate; they return an Outcome: applied, or the request they opened) and
the apply steps in `apply`, the only writers of stages and aliases, which the approved
request's Celery task reaches through `requests.transition_request_apply`.

Modules: models (registered models), versions, changes (stages and aliases), apply,
policies, requests (transition requests), comments. This package re-exports their public
functions, so callers write `services.alias_set(...)`.
"""

from registry.services.changes import Outcome, alias_delete, alias_set, model_version_transition_stage
from registry.services.comments import comment_add, comment_delete, comment_edit
from registry.services.models import (
    registered_model_create,
    registered_model_delete,
    registered_model_rename,
    registered_model_set_private,
    registered_model_tag_delete,
    registered_model_tag_set,
    registered_model_update,
)
from registry.services.policies import policy_get_for_user, policy_update
from registry.services.requests import (
    transition_request_apply,
    transition_request_approve,
    transition_request_cancel,
    transition_request_create,
    transition_request_reject,
    transition_request_retry,
)
from registry.services.versions import (
    model_version_create,
    model_version_delete,
    model_version_tag_delete,
    model_version_tag_set,
    model_version_update,
)
from registry.services.watches import model_watch_set

# What a reviewer or requester may do to a request, by the name the doors use.
DECISIONS = {
    "approve": transition_request_approve,
    "reject": transition_request_reject,
    "cancel": transition_request_cancel,
    "retry": transition_request_retry,
}

__all__ = [
    "DECISIONS",
    "Outcome",
    "alias_delete",
    "alias_set",
    "comment_add",
    "comment_delete",
    "comment_edit",
    "model_version_create",
    "model_version_delete",
    "model_version_tag_delete",
    "model_version_tag_set",
    "model_version_transition_stage",
    "model_version_update",
    "model_watch_set",
    "policy_get_for_user",
    "policy_update",
    "registered_model_create",
    "registered_model_delete",
    "registered_model_rename",
    "registered_model_set_private",
    "registered_model_tag_delete",
    "registered_model_tag_set",
    "registered_model_update",
    "transition_request_apply",
    "transition_request_approve",
    "transition_request_cancel",
    "transition_request_create",
    "transition_request_reject",
    "transition_request_retry",
]
