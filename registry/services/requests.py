"""Transition requests: the state machine of a change to a protected target.

    pending --(approvals reach the policy's count)--> approved --(apply task)--> applied
    pending --reject--> rejected          pending|approved|failed --cancel (requester)--> cancelled
    approved --(apply fails)--> failed --retry (an approver)--> approved
    pending|approved|failed --(another request or a superuser changed the target first,
                               or the version was deleted)--> superseded

Applied, rejected, cancelled and superseded are final. One pending request per target and
version (a partial unique index): asking again returns the open one.

Locking: every function here locks the registered model row first, then the request row,
the order the rest of the registry uses, so two decisions, or a decision and the apply task,
serialise instead of deadlocking. Reaching the required approvals commits the decision and
enqueues `transition_request_apply` on commit; the task (registry.tasks) calls
`transition_request_apply` below, which does nothing for a request that is not approved, so
a retried, duplicated or re-queued task never applies twice. The beat sweep re-queues
approved requests that no task applied (the broker was down at approval time).
"""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from portal import audit
from portal.errors import Conflict, InvalidParameter, NotFound, PermissionDenied, PortalError
from registry import events, notifications, selectors, validation
from registry.models import (
    ACTIVE_STAGES,
    Approval,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    TransitionRequest,
)
from registry.services import apply as apply_steps
from registry.services import policies
from registry.services._common import model_for_write, model_lock
from tracking.validation import now_ms

logger = logging.getLogger(__name__)

State = TransitionRequest.State
Action = TransitionRequest.Action
OPEN_STATES = (State.PENDING, State.APPROVED, State.FAILED)
FINAL_STATES = (State.APPLIED, State.REJECTED, State.CANCELLED, State.SUPERSEDED)
MAX_COMMENT_LENGTH = validation.MAX_COMMENT_LENGTH


def comment_validated(comment) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise InvalidParameter("comment must be a string.")
    if len(comment) > MAX_COMMENT_LENGTH:
        raise InvalidParameter(f"comment is longer than {MAX_COMMENT_LENGTH} characters.")
    return comment


def _audit(actor, action: str, request: TransitionRequest, **snapshots) -> None:
    audit.record(
        actor=actor,
        action=f"transition_request.{action}",
        object_type="transition_request",
        object_id=request.pk,
        object_name=f"{request} ({request.registered_model.name} version {request.version_number}, "
        f"{request.target_label})",
        resource=request.registered_model,
        **snapshots,
    )


def _set_state(request: TransitionRequest, state: str, reason: str = "", now: int | None = None) -> None:
    request.state = state
    request.state_reason = reason
    request.last_updated_timestamp = now or now_ms()
    fields = ["state", "state_reason", "last_updated_timestamp", "apply_attempts"]
    if state == State.APPLIED:
        request.applied_timestamp = request.last_updated_timestamp
        fields.append("applied_timestamp")
    request.save(update_fields=fields)


def enqueue_apply(request: TransitionRequest) -> None:
    """Apply the request once this transaction commits. `robust`: if the broker is down the
    approval still stands (it is committed) and the beat sweep re-queues it."""
    from registry import tasks

    request_id = request.pk
    transaction.on_commit(lambda: tasks.transition_request_apply.delay(request_id), robust=True)


# ---------------------------------------------------------------- opening


def request_open(
    *,
    actor: AbstractBaseUser,
    model: RegisteredModel,
    version: ModelVersion,
    action: str,
    target: str,
    archive_existing_versions: bool = False,
    comment: str = "",
) -> tuple[TransitionRequest, bool]:
    """Open a request for `version` (row-locked, of the locked `model`) or return the one
    already pending for the same target: (request, created). The caller checked EDIT."""
    existing = TransitionRequest.objects.filter(
        model_version=version, action=action, target=target, state=State.PENDING
    ).first()
    if existing is not None:
        return existing, False
    if action == Action.TRANSITION_STAGE:
        from_state = version.current_stage
    else:
        current = ModelAlias.objects.filter(registered_model=model, alias=target).select_related("model_version").first()
        from_state = str(current.model_version.version) if current is not None else ""
    now = now_ms()
    try:
        with transaction.atomic():
            request = TransitionRequest.objects.create(
                registered_model=model, model_version=version, version_number=version.version, action=action,
                target=target, from_stage=from_state, archive_existing_versions=archive_existing_versions,
                requester=actor, comment=comment, creation_timestamp=now, last_updated_timestamp=now,
            )
    except IntegrityError:  # the unique index: another request opened it a moment earlier
        return TransitionRequest.objects.get(model_version=version, action=action, target=target,
                                             state=State.PENDING), False
    request.registered_model = model
    _audit(actor, "created", request, after={
        "action": action, "target": target, "version": version.version, "from": from_state,
        "archive_existing_versions": archive_existing_versions, "comment": comment,
    })
    events.transition_request_event(request, "created", actor_name=actor.get_username(), comment=comment)
    notifications.request_opened(request, policies.policy_for(model))
    return request, True


@transaction.atomic
def transition_request_create(
    *,
    actor: AbstractBaseUser,
    name: str,
    version: int | str,
    stage: str | None = None,
    alias: str | None = None,
    delete_alias: bool = False,
    archive_existing_versions: bool = False,
    comment: str | None = None,
) -> tuple[TransitionRequest, bool]:
    """Ask for a change, protected target or not (the native API and Databricks' create).
    Exactly one of `stage` and `alias`; needs EDIT on the model, as making the change would."""
    comment = comment_validated(comment)
    if (stage is None) == (alias is None):
        raise InvalidParameter("Give exactly one of stage and alias.")
    if not isinstance(archive_existing_versions, bool):
        raise InvalidParameter("archive_existing_versions must be true or false.")
    if stage is not None:
        target = validation.stage_parse(stage)
        if archive_existing_versions and target not in ACTIVE_STAGES:
            raise InvalidParameter(
                f"archive_existing_versions is only for {' and '.join(ACTIVE_STAGES)}, not '{target}'."
            )
        action = Action.TRANSITION_STAGE
    else:
        target = validation.alias_validated(alias)
        if archive_existing_versions:
            raise InvalidParameter("archive_existing_versions is for stage transitions, not aliases.")
        action = Action.DELETE_ALIAS if delete_alias else Action.SET_ALIAS
    model = model_for_write(actor, name)
    found = selectors.model_version_lock(model, version)
    if action == Action.TRANSITION_STAGE and found.current_stage == target and not archive_existing_versions:
        raise InvalidParameter(f"Version {found.version} of '{model.name}' is already in {target}.")
    if action != Action.TRANSITION_STAGE:
        current = ModelAlias.objects.filter(registered_model=model, alias=target).first()
        if action == Action.SET_ALIAS and current is not None and current.model_version_id == found.pk:
            raise InvalidParameter(f"Alias '{target}' already points at version {found.version}.")
        if action == Action.DELETE_ALIAS and (current is None or current.model_version_id != found.pk):
            raise InvalidParameter(f"Alias '{target}' does not point at version {found.version}.")
    return request_open(
        actor=actor, model=model, version=found, action=action, target=str(target),
        archive_existing_versions=archive_existing_versions, comment=comment,
    )


# ---------------------------------------------------------------- deciding


def _request_for_write(actor: AbstractBaseUser, request_id: int) -> tuple[TransitionRequest, policies.Policy]:
    """The request (visible to `actor`, else NotFound), with its model and itself row-locked."""
    found = selectors.transition_request_get_for_user(actor, request_id)
    model = model_lock(found.registered_model_id)
    request = TransitionRequest.objects.select_for_update().get(pk=found.pk)
    request.registered_model = model
    return request, policies.policy_for(model)


def _require_state(request: TransitionRequest, *states: str, doing: str) -> None:
    if request.state not in states:
        raise Conflict(f"Cannot {doing} {request}: it is {request.state}.")


def _require_decider(actor: AbstractBaseUser, request: TransitionRequest, policy: policies.Policy) -> None:
    reason = policies.may_decide(actor, request, policy)
    if reason is not None:
        raise PermissionDenied(reason)


@transaction.atomic
def transition_request_approve(
    *, actor: AbstractBaseUser, request_id: int, comment: str | None = None, archive_existing_versions: bool = False
) -> TransitionRequest:
    """Record `actor`'s approval. When the approvals reach the policy's count the request is
    approved and the apply task is enqueued on commit.

    `archive_existing_versions`: Databricks' approve carries the flag (the approver
    decides), the portal's requests carry it from creation. True turns it on for the
    request as part of this approval (audited with it, and shown to later approvers); it
    then archives the other versions in the target stage when applied. False leaves the
    request's own flag alone, so an approval never takes back what the requester asked.
    Only for stage requests to Staging or Production (InvalidParameter otherwise).
    """
    comment = comment_validated(comment)
    if not isinstance(archive_existing_versions, bool):
        raise InvalidParameter("archive_existing_versions must be true or false.")
    request, policy = _request_for_write(actor, request_id)
    _require_state(request, State.PENDING, doing="approve")
    _require_decider(actor, request, policy)
    if Approval.objects.filter(transition_request=request, reviewer=actor).exists():
        raise Conflict(f"You have already decided {request}.")
    archive_added = archive_existing_versions and not request.archive_existing_versions
    if archive_added:
        if request.action != Action.TRANSITION_STAGE or request.target not in ACTIVE_STAGES:
            raise InvalidParameter(
                f"archive_existing_versions is only for {' and '.join(ACTIVE_STAGES)}, not {request.target_label}."
            )
        request.archive_existing_versions = True
        request.save(update_fields=["archive_existing_versions"])
    now = now_ms()
    Approval.objects.create(
        transition_request=request, reviewer=actor, decision=Approval.Decision.APPROVE, comment=comment, timestamp=now
    )
    approvals = Approval.objects.filter(transition_request=request, decision=Approval.Decision.APPROVE).count()
    _audit(actor, "approval_added", request, after={"approvals": approvals, "required": policy.approvals_required,
                                                   "comment": comment,
                                                   **({"archive_existing_versions": True} if archive_added else {})})
    if approvals >= policy.approvals_required:
        _set_state(request, State.APPROVED, now=now)
        _audit(actor, "approved", request, before={"state": State.PENDING}, after={"state": State.APPROVED})
        events.transition_request_event(request, "approved", actor_name=actor.get_username(), comment=comment)
        enqueue_apply(request)
    else:
        request.last_updated_timestamp = now
        request.save(update_fields=["last_updated_timestamp"])
    notifications.request_decided(request, actor, "approved", comment)
    return request


@transaction.atomic
def transition_request_reject(*, actor: AbstractBaseUser, request_id: int, comment: str | None = None) -> TransitionRequest:
    """End a pending request with `actor`'s rejection (anyone who may approve it may reject it)."""
    comment = comment_validated(comment)
    request, policy = _request_for_write(actor, request_id)
    _require_state(request, State.PENDING, doing="reject")
    _require_decider(actor, request, policy)
    if Approval.objects.filter(transition_request=request, reviewer=actor).exists():
        raise Conflict(f"You have already decided {request}.")
    now = now_ms()
    Approval.objects.create(
        transition_request=request, reviewer=actor, decision=Approval.Decision.REJECT, comment=comment, timestamp=now
    )
    _set_state(request, State.REJECTED, now=now)
    _audit(actor, "rejected", request, before={"state": State.PENDING}, after={"state": State.REJECTED,
                                                                              "comment": comment})
    events.transition_request_event(request, "rejected", actor_name=actor.get_username(), comment=comment)
    notifications.request_decided(request, actor, "rejected", comment)
    return request


@transaction.atomic
def transition_request_cancel(*, actor: AbstractBaseUser, request_id: int, comment: str | None = None) -> TransitionRequest:
    """The requester withdraws a request that has not been applied (a superuser may too)."""
    comment = comment_validated(comment)
    request, _ = _request_for_write(actor, request_id)
    if request.requester_id != actor.pk and not actor.is_superuser:
        raise PermissionDenied(f"Only the requester may cancel {request}.")
    _require_state(request, *OPEN_STATES, doing="cancel")
    before = request.state
    _set_state(request, State.CANCELLED, reason=comment)
    _audit(actor, "cancelled", request, before={"state": before}, after={"state": State.CANCELLED, "comment": comment})
    return request


@transaction.atomic
def transition_request_retry(*, actor: AbstractBaseUser, request_id: int, comment: str | None = None) -> TransitionRequest:
    """Send a failed request back to the apply task (an approver of the request may)."""
    comment = comment_validated(comment)
    request, policy = _request_for_write(actor, request_id)
    _require_state(request, State.FAILED, doing="retry")
    if not actor.is_superuser:
        _require_decider(actor, request, policy)
    failure = request.state_reason
    _set_state(request, State.APPROVED)
    _audit(actor, "retried", request, before={"state": State.FAILED, "reason": failure},
           after={"state": State.APPROVED, "comment": comment})
    enqueue_apply(request)
    return request


# ---------------------------------------------------------------- applying


def transition_request_apply(request_id: int) -> TransitionRequest | None:
    """Apply an approved request: what the Celery task runs. Idempotent.

    Locks the model row and the request row; does nothing unless the request is approved.
    The change, the archive of other versions, the history rows, the superseding of other
    requests for the same target and the audit events commit in one transaction. A change
    the registry refuses (the version is gone, the move is not allowed) marks the request
    failed or superseded instead; any other error rolls everything back and propagates, so
    the task is retried.
    """
    with transaction.atomic():
        model_id = (
            TransitionRequest.objects.filter(pk=request_id).values_list("registered_model_id", flat=True).first()
        )
        if model_id is None:
            return None
        model = model_lock(model_id)
        request = TransitionRequest.objects.select_for_update().get(pk=request_id)
        request.registered_model = model
        if request.state != State.APPROVED:
            return request
        request.apply_attempts += 1
        how = apply_steps.How(actor=None, request=request)
        try:
            with transaction.atomic():
                version = apply_steps.version_of_request(request)
                if request.action == Action.TRANSITION_STAGE:
                    apply_steps.stage_apply(
                        model, version, request.target,
                        archive_existing_versions=request.archive_existing_versions, how=how,
                    )
                elif request.action == Action.SET_ALIAS:
                    apply_steps.alias_apply(model, request.target, version, how=how)
                else:
                    apply_steps.alias_apply(model, request.target, None, how=how)
        except NotFound as exc:
            _set_state(request, State.SUPERSEDED, reason=exc.message)
            _audit(None, "superseded", request, before={"state": State.APPROVED},
                   after={"state": State.SUPERSEDED, "reason": exc.message})
            return request
        except PortalError as exc:
            _set_state(request, State.FAILED, reason=exc.message)
            _audit(None, "failed", request, before={"state": State.APPROVED},
                   after={"state": State.FAILED, "reason": exc.message})
            events.transition_request_event(request, "failed")
            notifications.request_failed(request)
            return request
        _set_state(request, State.APPLIED)
        _audit(None, "applied", request, before={"state": State.APPROVED}, after={"state": State.APPLIED})
        supersede_for_target(model, request.action, request.target, by=request)
        events.transition_request_event(request, "applied")
        notifications.request_applied(request)
        return request


def supersede_for_target(
    model: RegisteredModel, action: str, target: str, *, by: TransitionRequest | None = None,
    actor: AbstractBaseUser | None = None,
) -> None:
    """Supersede every open request for the same target of `model` (the model lock is
    held): `by` (a request) or `actor` (a superuser's direct change) changed it first."""
    actions = [Action.TRANSITION_STAGE] if action == Action.TRANSITION_STAGE else [Action.SET_ALIAS, Action.DELETE_ALIAS]
    others = TransitionRequest.objects.select_for_update().filter(
        registered_model=model, action__in=actions, target=target, state__in=OPEN_STATES
    )
    if by is not None:
        others = others.exclude(pk=by.pk)
    reason = f"{by} changed {by.target_label} first." if by is not None else (
        f"{actor.get_username()} changed it directly." if actor is not None else "The target changed first."
    )
    for other in others:
        other.registered_model = model
        before = other.state
        _set_state(other, State.SUPERSEDED, reason=reason)
        _audit(actor, "superseded", other, before={"state": before}, after={"state": State.SUPERSEDED, "reason": reason})


def supersede_open_requests_of_version(version: ModelVersion, *, actor: AbstractBaseUser) -> None:
    """A version is being deleted (its model is locked): its open requests end superseded."""
    reason = f"Version {version.version} was deleted."
    for request in TransitionRequest.objects.select_for_update().filter(model_version=version, state__in=OPEN_STATES):
        request.registered_model = version.registered_model
        before = request.state
        _set_state(request, State.SUPERSEDED, reason=reason)
        _audit(actor, "superseded", request, before={"state": before}, after={"state": State.SUPERSEDED,
                                                                             "reason": reason})


def approved_request_ids_waiting(older_than_ms: int) -> list[int]:
    """Approved requests not applied and not touched for `older_than_ms` (the sweep's input)."""
    cutoff = now_ms() - older_than_ms
    return list(
        TransitionRequest.objects.filter(state=State.APPROVED, last_updated_timestamp__lte=cutoff)
        .order_by("id")
        .values_list("id", flat=True)
    )


def open_requests_of(model: RegisteredModel) -> "list[TransitionRequest]":
    return list(TransitionRequest.objects.filter(registered_model=model, state__in=OPEN_STATES).order_by("id"))

