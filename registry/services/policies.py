"""Approval policies: which stages and aliases of a registered model are protected, who may
approve a change to each, and how many approvals it takes.

A model without a ModelPolicy row has the default policy: the stages in the setting
PORTAL_PROTECTED_STAGES (Production out of the box), no protected alias, one approval, and
never the requester's own (the two-person rule). MANAGE holders edit the policy
(`policy_update`); every change is audited.

`may_decide` is the one answer to "may this user approve or reject this request": APPROVE
on the model (portal.permissions; MANAGE does not imply it), within the target's approver
set when the policy narrows it, and not the requester unless the policy allows it.
"""

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction

from portal import audit, permissions
from portal.errors import InvalidParameter, PermissionDenied
from registry import validation
from registry.models import ModelAlias, ModelPolicy, ModelVersion, RegisteredModel, Stage, TransitionRequest
from registry.services._common import model_for_write
from tracking.validation import now_ms

MAX_APPROVALS_REQUIRED = 10
PROTECTABLE_STAGES = (Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED)


def stage_key(stage: str) -> str:
    return f"stage:{stage}"


def alias_key(alias: str) -> str:
    return f"alias:{alias}"


def request_key(request: TransitionRequest) -> str:
    if request.action == TransitionRequest.Action.TRANSITION_STAGE:
        return stage_key(request.target)
    return alias_key(request.target)


@dataclass
class Policy:
    """A model's policy in effect (its row, or the default)."""

    protected_stages: list[str]
    protected_aliases: list[str]
    approvals_required: int = 1
    requester_may_approve: bool = False
    # target key ("stage:Production", "alias:champion") -> {"users": [ids], "teams": [ids]}
    approvers: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def stage_protected(self, stage: str) -> bool:
        return stage in self.protected_stages

    def alias_protected(self, alias: str) -> bool:
        return alias in self.protected_aliases

    def protects(self, request: TransitionRequest) -> bool:
        if request.action == TransitionRequest.Action.TRANSITION_STAGE:
            return self.stage_protected(request.target) or self.stage_protected(request.from_stage)
        return self.alias_protected(request.target)


def default_policy() -> Policy:
    return Policy(protected_stages=list(settings.PORTAL_PROTECTED_STAGES), protected_aliases=[])


def policy_for(model: RegisteredModel) -> Policy:
    row = ModelPolicy.objects.filter(registered_model=model).first()
    if row is None:
        return default_policy()
    return Policy(
        protected_stages=list(row.protected_stages),
        protected_aliases=list(row.protected_aliases),
        approvals_required=row.approvals_required,
        requester_may_approve=row.requester_may_approve,
        approvers={key: {"users": list(v.get("users", [])), "teams": list(v.get("teams", []))}
                   for key, v in (row.approvers or {}).items()},
    )


# ---------------------------------------------------------------- who may decide


def may_decide(
    actor: AbstractBaseUser, request: TransitionRequest, policy: Policy, access: permissions.Access | None = None
) -> str | None:
    """None if `actor` may approve or reject `request`; otherwise why not (a sentence).
    `access` is the actor's access to the request's model, if the caller already has it
    (a list of requests reads it once per model)."""
    if not permissions.is_active_user(actor):
        return "Only a signed-in user can decide transition requests."
    model = request.registered_model
    access = access or permissions.root_access(actor, model)
    if not permissions.level_at_least(actor, model, permissions.READ, access=access):
        return f"You may not read '{model.name}'."
    if request.requester_id == actor.pk and not policy.requester_may_approve:
        return f"You requested {request}: someone else must decide it (two-person rule)."
    if not access.approve:
        return f"You may not approve changes to '{model.name}' (no APPROVE grant on the model)."
    if not _in_approver_set(actor, policy.approvers.get(request_key(request))):
        return f"The policy of '{model.name}' names other approvers for {request.target_label}."
    return None


def _in_approver_set(actor: AbstractBaseUser, narrowed: dict[str, list[int]] | None) -> bool:
    if not narrowed or actor.is_superuser:
        return True
    if actor.pk in narrowed.get("users", []):
        return True
    teams = narrowed.get("teams", [])
    return bool(teams) and actor.groups.filter(pk__in=teams).exists()


def deciders_of(request: TransitionRequest, policy: Policy) -> list[AbstractBaseUser]:
    """The active users who may decide `request` (for notifications), superusers excluded
    unless they hold APPROVE through a grant."""
    user_model = get_user_model()
    names = [h.name for h in permissions.holders_of(request.registered_model)
             if h.kind == "user" and h.approve and "superuser" not in h.sources]
    users = user_model.objects.filter(username__in=names, is_active=True)
    return [u for u in users if may_decide(u, request, policy) is None]


def available_actions(
    user, request: TransitionRequest, policy: Policy | None = None, access: permissions.Access | None = None
) -> list[str]:
    """What `user` may do to `request` now: approve, reject, cancel, retry (what every door
    reports). Reads the request's decisions through `request.decisions.all()`, so a list
    that prefetched them asks nothing more."""
    policy = policy or policy_for(request.registered_model)
    State = TransitionRequest.State
    actions = []
    decider = may_decide(user, request, policy, access) is None
    decided = any(d.reviewer_id == user.pk for d in request.decisions.all())
    if request.state == State.PENDING and decider and not decided:
        actions += ["approve", "reject"]
    if request.state in (State.PENDING, State.APPROVED, State.FAILED) and (
        request.requester_id == user.pk or user.is_superuser
    ):
        actions.append("cancel")
    if request.state == State.FAILED and (decider or user.is_superuser):
        actions.append("retry")
    return actions


def to_decide(user, requests) -> list[TransitionRequest]:
    """Those of `requests` that `user` may approve now, reading each model's policy and the
    user's access to it once."""
    policies: dict[int, Policy] = {}
    accesses: dict[int, permissions.Access] = {}
    found = []
    for request in requests:
        model = request.registered_model
        if model.pk not in policies:
            policies[model.pk] = policy_for(model)
            accesses[model.pk] = permissions.root_access(user, model)
        if "approve" in available_actions(user, request, policies[model.pk], accesses[model.pk]):
            found.append(request)
    return found


# ---------------------------------------------------------------- targets held


def protected_targets_of(model: RegisteredModel, version: ModelVersion | None = None) -> list[str]:
    """The protected stages and aliases the model (or one version) holds, e.g.
    ["version 3 in Production", "alias @champion (version 3)"]."""
    policy = policy_for(model)
    held = []
    versions = ModelVersion.objects.filter(registered_model=model, current_stage__in=policy.protected_stages)
    if version is not None:
        versions = versions.filter(pk=version.pk)
    for number, stage in versions.order_by("version").values_list("version", "current_stage"):
        held.append(f"version {number} in {stage}")
    aliases = ModelAlias.objects.filter(registered_model=model, alias__in=policy.protected_aliases)
    if version is not None:
        aliases = aliases.filter(model_version=version)
    for alias, number in aliases.order_by("alias").values_list("alias", "model_version__version"):
        held.append(f"alias @{alias} (version {number})")
    return held


def require_no_protected_target(model: RegisteredModel, what: str, *, version: ModelVersion | None = None) -> None:
    """Refuse to delete or rename what holds a protected stage or alias, for everyone: that
    would take a deployed model away without a request. Release the target first."""
    held = protected_targets_of(model, version)
    if not held:
        return
    subject = f"version {version.version} of '{model.name}'" if version is not None else f"model '{model.name}'"
    verb = "renamed" if what == "rename" else "deleted"
    raise PermissionDenied(
        f"The {subject} cannot be {verb} while it holds protected targets ({'; '.join(held)}). "
        "Release them first: move the version out of the protected stage and delete or move the protected "
        "alias (through a transition request), then try again."
    )


# ---------------------------------------------------------------- reading and editing


def policy_get_for_user(actor: AbstractBaseUser, name: str) -> tuple[RegisteredModel, Policy]:
    from registry import selectors

    model = selectors.registered_model_get_for_user(actor, name)
    return model, policy_for(model)


def policy_as_dict(model: RegisteredModel, policy: Policy) -> dict[str, Any]:
    """The policy as the native API shows it: approvers by username and team name."""
    user_ids = {uid for v in policy.approvers.values() for uid in v.get("users", [])}
    team_ids = {tid for v in policy.approvers.values() for tid in v.get("teams", [])}
    usernames = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    team_names = dict(Group.objects.filter(pk__in=team_ids).values_list("pk", "name"))
    return {
        "registered_model": model.name,
        "protected_stages": list(policy.protected_stages),
        "protected_aliases": list(policy.protected_aliases),
        "approvals_required": policy.approvals_required,
        "requester_may_approve": policy.requester_may_approve,
        "approvers": {
            key: {
                "users": sorted(usernames[u] for u in v.get("users", []) if u in usernames),
                "teams": sorted(team_names[t] for t in v.get("teams", []) if t in team_names),
            }
            for key, v in sorted(policy.approvers.items())
        },
    }


def _stages_validated(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise InvalidParameter("protected_stages must be a list of stage names.")
    stages = []
    for item in value:
        stage = validation.stage_parse(item)
        if stage not in PROTECTABLE_STAGES:
            raise InvalidParameter(f"protected_stages may list {', '.join(PROTECTABLE_STAGES)}, not '{item}'.")
        if stage not in stages:
            stages.append(str(stage))
    return stages


def _aliases_validated(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise InvalidParameter("protected_aliases must be a list of alias names.")
    aliases = []
    for item in value:
        alias = validation.alias_validated(item)
        if alias not in aliases:
            aliases.append(alias)
    return aliases


def _approvers_validated(value: Any, stages: list[str], aliases: list[str]) -> dict[str, dict[str, list[int]]]:
    if not isinstance(value, dict):
        raise InvalidParameter('approvers must be an object: {"stage:Production": {"users": [...], "teams": [...]}}.')
    targets = {stage_key(s) for s in stages} | {alias_key(a) for a in aliases}
    result = {}
    for key, entry in value.items():
        if key not in targets:
            raise InvalidParameter(
                f"approvers names '{key}', which is not a protected target (use 'stage:<Stage>' or 'alias:<name>' "
                f"for one of: {', '.join(sorted(targets)) or 'none'})."
            )
        if not isinstance(entry, dict) or set(entry) - {"users", "teams"}:
            raise InvalidParameter(f'approvers["{key}"] must be {{"users": [usernames], "teams": [team names]}}.')
        users, teams = entry.get("users", []), entry.get("teams", [])
        if not isinstance(users, list) or not isinstance(teams, list):
            raise InvalidParameter(f'approvers["{key}"] users and teams must be lists of names.')
        found_users = dict(get_user_model().objects.filter(username__in=[str(u) for u in users])
                           .values_list("username", "pk"))
        found_teams = dict(Group.objects.filter(name__in=[str(t) for t in teams]).values_list("name", "pk"))
        missing = [str(u) for u in users if str(u) not in found_users] + [str(t) for t in teams if str(t) not in found_teams]
        if missing:
            raise InvalidParameter(f'approvers["{key}"] names unknown users or teams: {", ".join(missing)}.')
        if not users and not teams:
            continue
        result[key] = {"users": sorted(found_users.values()), "teams": sorted(found_teams.values())}
    return result


@transaction.atomic
def policy_update(
    *,
    actor: AbstractBaseUser,
    name: str,
    protected_stages: Any,
    protected_aliases: Any,
    approvals_required: Any = 1,
    requester_may_approve: Any = False,
    approvers: Any = None,
) -> tuple[RegisteredModel, Policy]:
    """Replace the model's policy (MANAGE). Requests already open keep going under the new one."""
    model = model_for_write(actor, name, permissions.MANAGE)
    stages = _stages_validated(protected_stages)
    aliases = _aliases_validated(protected_aliases)
    if isinstance(approvals_required, bool) or not isinstance(approvals_required, int) or not (
        1 <= approvals_required <= MAX_APPROVALS_REQUIRED
    ):
        raise InvalidParameter(f"approvals_required must be a whole number from 1 to {MAX_APPROVALS_REQUIRED}.")
    if not isinstance(requester_may_approve, bool):
        raise InvalidParameter("requester_may_approve must be true or false.")
    approver_sets = _approvers_validated(approvers or {}, stages, aliases)
    before = policy_as_dict(model, policy_for(model))
    ModelPolicy.objects.update_or_create(
        registered_model=model,
        defaults={
            "protected_stages": stages,
            "protected_aliases": aliases,
            "approvals_required": approvals_required,
            "requester_may_approve": requester_may_approve,
            "approvers": approver_sets,
            "updated_at": now_ms(),
        },
    )
    policy = policy_for(model)
    after = policy_as_dict(model, policy)
    if before != after:
        audit.record(
            actor=actor, action="policy.updated", object_type="model_policy", object_id=model.pk,
            object_name=model.name, before=before, after=after, resource=model,
        )
    return model, policy
