"""The apply steps: the only writers of stages and aliases.

Each expects the registered model's row lock to be held by the caller's transaction (the
public entry points in registry.services.changes take it, and so does the apply task in
registry.services.requests). Nothing here checks permissions or policy: that was done
before, by the entry point or by the approvals. Each change writes its history rows
(StageTransition, AliasTransition, linked to the request that caused it), an audit event
per version or alias changed, and the webhook events, in the caller's transaction.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from portal import audit
from portal.errors import Conflict, NotFound
from registry import events
from registry.models import (
    ALLOWED_TRANSITIONS,
    AliasTransition,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Stage,
    StageTransition,
    TransitionRequest,
)
from registry.services._common import touch
from tracking.validation import now_ms


@dataclass(frozen=True)
class How:
    """Why a change is being applied: directly, as a superuser's bypass, or for a request."""

    actor: AbstractBaseUser | None
    request: TransitionRequest | None = None
    bypass: bool = False

    @property
    def request_id(self) -> int | None:
        return self.request.pk if self.request is not None else None


def _audit_action(kind: str, how: How) -> str:
    return f"{kind}_bypassed" if how.bypass else f"{kind}_changed"


def stage_apply(
    model: RegisteredModel, version: ModelVersion, to_stage: str, *, archive_existing_versions: bool, how: How
) -> ModelVersion:
    """Move `version` (row-locked, of `model`, whose lock is held) to `to_stage`, and with
    `archive_existing_versions` archive the model's other versions in that stage.

    Idempotent: a version already in `to_stage` is not moved again and gets no new row.
    """
    now = now_ms()
    moved: list[tuple[ModelVersion, str, str]] = []
    transitions: list[StageTransition] = []
    if version.current_stage != to_stage:
        if to_stage not in ALLOWED_TRANSITIONS[version.current_stage]:
            raise Conflict(f"Cannot move {version} from {version.current_stage} to {to_stage}.")
        from_stage = version.current_stage
        transitions.append(
            StageTransition(
                registered_model=model, model_version=version, version_number=version.version,
                from_stage=from_stage, to_stage=to_stage, actor=how.actor if _is_user(how.actor) else None,
                timestamp=now, transition_request=how.request,
            )
        )
        version.current_stage = to_stage
        version.last_updated_timestamp = now
        version.save(update_fields=["current_stage", "last_updated_timestamp"])
        moved.append((version, from_stage, to_stage))
    if archive_existing_versions:
        others = list(
            ModelVersion.objects.select_for_update()
            .filter(registered_model=model, current_stage=to_stage)
            .exclude(pk=version.pk)
            .order_by("version")
        )
        for other in others:
            transitions.append(
                StageTransition(
                    registered_model=model, model_version=other, version_number=other.version,
                    from_stage=to_stage, to_stage=Stage.ARCHIVED, actor=how.actor if _is_user(how.actor) else None,
                    timestamp=now, transition_request=how.request,
                    reason=f"archived when version {version.version} moved to {to_stage}",
                )
            )
            moved.append((other, to_stage, Stage.ARCHIVED))
        ModelVersion.objects.filter(pk__in=[o.pk for o in others]).update(
            current_stage=Stage.ARCHIVED, last_updated_timestamp=now
        )
    if transitions:
        StageTransition.objects.bulk_create(transitions)
        touch(model, now)
    for changed, from_stage, stage in moved:
        audit.record(
            actor=how.actor, action=_audit_action("model_version.stage", how), object_type="model_version",
            object_id=changed.pk, object_name=f"{model.name} version {changed.version}",
            before={"stage": from_stage}, after={"stage": stage, "transition_request": how.request_id},
            resource=model,
        )
        events.model_version_stage_changed(model, changed.version, from_stage, stage, how.request_id)
    return version


def alias_apply(model: RegisteredModel, alias: str, version: ModelVersion | None, *, how: How) -> ModelAlias | None:
    """Point `alias` at `version` (None: delete the alias). Idempotent: an alias already
    where it is asked to be gets no history row."""
    existing = ModelAlias.objects.select_for_update().filter(registered_model=model, alias=alias).first()
    from_number = existing.model_version.version if existing is not None else None
    to_number = version.version if version is not None else None
    if from_number == to_number:
        return existing
    if version is None:
        existing.delete()
        result = None
    elif existing is None:
        result = ModelAlias.objects.create(registered_model=model, alias=alias, model_version=version)
    else:
        existing.model_version = version
        existing.save(update_fields=["model_version"])
        result = existing
    now = now_ms()
    AliasTransition.objects.create(
        registered_model=model, alias=alias, from_version_number=from_number, to_version_number=to_number,
        actor=how.actor if _is_user(how.actor) else None, timestamp=now, transition_request=how.request,
    )
    touch(model, now)
    audit.record(
        actor=how.actor, action=_audit_action("model_alias", how), object_type="model_alias",
        object_id=f"{model.pk}:{alias}", object_name=f"{model.name}@{alias}",
        before={"version": from_number}, after={"version": to_number, "transition_request": how.request_id},
        resource=model,
    )
    # As MLflow: setting or moving an alias is "created", removing it "deleted".
    if to_number is not None:
        events.model_version_alias_created(model, alias, to_number)
    else:
        events.model_version_alias_deleted(model, alias)
    return result


def version_of_request(request: TransitionRequest) -> ModelVersion:
    """The request's version, row-locked, or NotFound if it was deleted."""
    if request.model_version_id is None:
        raise NotFound(f"Version {request.version_number} of '{request.registered_model.name}' was deleted.")
    return ModelVersion.objects.select_for_update().select_related("registered_model").get(pk=request.model_version_id)


def _is_user(actor: AbstractBaseUser | None) -> bool:
    return actor is not None and getattr(actor, "is_authenticated", False)
