"""The public entry points of governed changes: stages and aliases.

Each validates, locks the model row, checks the actor's right (EDIT) and runs the policy
gate, then either applies the change (registry.services.apply) or opens a transition
request, and returns an Outcome saying which. Doors call these; the Celery task calls the
apply step directly, so the gate never runs twice.

Protected (registry.services.policies): moving a version into or out of a protected stage
(including archiving other versions out of it) and setting, moving or deleting a protected
alias. For anyone but a superuser that opens a request (committed with the call); a
superuser's change is applied and audited as a bypass, and supersedes the open requests for
the same target. Unprotected targets change at once.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from portal.errors import InvalidParameter
from registry import selectors, validation
from registry.models import ACTIVE_STAGES, ModelAlias, ModelVersion, RegisteredModel, TransitionRequest
from registry.services import policies, requests
from registry.services._common import model_for_write
from registry.services.apply import How, alias_apply, stage_apply

Action = TransitionRequest.Action


@dataclass(frozen=True)
class Outcome:
    """What a governed change did: applied (`request` None), or the request it opened or
    found open (`request_created` False: asking again returned the open one)."""

    version: ModelVersion | None = None
    alias: ModelAlias | None = None
    request: TransitionRequest | None = None
    request_created: bool = False

    @property
    def applied(self) -> bool:
        return self.request is None


def _others_in_stage(model: RegisteredModel, version: ModelVersion, stage: str) -> bool:
    return ModelVersion.objects.filter(registered_model=model, current_stage=stage).exclude(pk=version.pk).exists()


@transaction.atomic
def model_version_transition_stage(
    *,
    actor: AbstractBaseUser,
    name: str,
    version: int | str,
    stage: str,
    archive_existing_versions: bool = False,
    comment: str | None = None,
) -> Outcome:
    """Move a version to `stage`; with `archive_existing_versions`, archive the model's other
    versions in that stage, in the same transaction (or ask for it, if protected).

    Preconditions: `actor` may edit the model; archiving is only for Staging and Production.
    Idempotent: a version already in `stage` is not moved again (the others are still
    archived if asked).
    """
    to_stage = validation.stage_parse(stage)
    if archive_existing_versions and to_stage not in ACTIVE_STAGES:
        raise InvalidParameter(
            f"Model version transition cannot archive existing model versions because '{to_stage}' is not an "
            f"active stage. Valid stages are {', '.join(ACTIVE_STAGES)}."
        )
    model = model_for_write(actor, name)
    found = selectors.model_version_lock(model, version)
    policy = policies.policy_for(model)
    changes = found.current_stage != to_stage or (
        archive_existing_versions and _others_in_stage(model, found, to_stage)
    )
    governed = changes and (policy.stage_protected(to_stage) or policy.stage_protected(found.current_stage))
    if governed and not actor.is_superuser:
        request, created = requests.request_open(
            actor=actor, model=model, version=found, action=Action.TRANSITION_STAGE, target=str(to_stage),
            archive_existing_versions=archive_existing_versions, comment=requests.comment_validated(comment),
        )
        return Outcome(version=found, request=request, request_created=created)
    stage_apply(model, found, to_stage, archive_existing_versions=archive_existing_versions,
                how=How(actor=actor, bypass=governed))
    if governed:
        requests.supersede_for_target(model, Action.TRANSITION_STAGE, str(to_stage), actor=actor)
    return Outcome(version=found)


@transaction.atomic
def alias_set(*, actor: AbstractBaseUser, name: str, alias: str, version: int | str,
              comment: str | None = None) -> Outcome:
    """Point `alias` of model `name` at `version`, moving it if it pointed elsewhere (or ask
    for it, if the alias is protected). Preconditions: `actor` may edit the model; the
    version exists. Idempotent."""
    alias = validation.alias_validated(alias)
    model = model_for_write(actor, name)
    found = selectors.model_version_lock(model, version)
    existing = ModelAlias.objects.filter(registered_model=model, alias=alias).first()
    if existing is not None and existing.model_version_id == found.pk:
        return Outcome(version=found, alias=existing)
    governed = policies.policy_for(model).alias_protected(alias)
    if governed and not actor.is_superuser:
        request, created = requests.request_open(
            actor=actor, model=model, version=found, action=Action.SET_ALIAS, target=alias,
            comment=requests.comment_validated(comment),
        )
        return Outcome(version=found, request=request, request_created=created)
    result = alias_apply(model, alias, found, how=How(actor=actor, bypass=governed))
    if governed:
        requests.supersede_for_target(model, Action.SET_ALIAS, alias, actor=actor)
    return Outcome(version=found, alias=result)


@transaction.atomic
def alias_delete(*, actor: AbstractBaseUser, name: str, alias: str, comment: str | None = None) -> Outcome:
    """Remove an alias (or ask for it, if protected). An alias that is not there is not an
    error (retries are harmless)."""
    model = model_for_write(actor, name)
    existing = ModelAlias.objects.filter(registered_model=model, alias=alias).select_related("model_version").first()
    if existing is None:
        return Outcome()
    governed = policies.policy_for(model).alias_protected(alias)
    if governed and not actor.is_superuser:
        found = selectors.model_version_lock(model, existing.model_version.version)
        request, created = requests.request_open(
            actor=actor, model=model, version=found, action=Action.DELETE_ALIAS, target=alias,
            comment=requests.comment_validated(comment),
        )
        return Outcome(version=found, request=request, request_created=created)
    alias_apply(model, alias, None, how=How(actor=actor, bypass=governed))
    if governed:
        requests.supersede_for_target(model, Action.DELETE_ALIAS, alias, actor=actor)
    return Outcome()
