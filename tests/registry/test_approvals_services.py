"""The approval workflow's state machine, through the services: every transition and every
forbidden one. Production is protected (the default policy); on_commit callbacks do not run
in these tests unless captured, so the apply step is called explicitly where it matters."""

import pytest
from django.contrib.auth.models import Group

from portal import permissions
from portal.errors import Conflict, InvalidParameter, NotFound, PermissionDenied
from portal.models import AuditEvent
from registry import selectors, services
from registry.models import AliasTransition, ModelAlias, ModelVersion, Stage, StageTransition, TransitionRequest
from registry.services import policies
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.governed]

State = TransitionRequest.State


@pytest.fixture
def bob_approves(alice, bob, churn):
    permissions.grant_create(actor=alice, root=churn, level="APPROVE", user=bob)
    return bob


@pytest.fixture
def dave(db):
    return make_user("dave")


def ask_production(user, version=2, **kwargs):
    outcome = services.model_version_transition_stage(actor=user, name="churn", version=version, stage="Production",
                                                      **kwargs)
    assert not outcome.applied
    return outcome.request


def stage_of(number: int) -> str:
    return ModelVersion.objects.get(registered_model__name="churn", version=number).current_stage


def actions(request) -> list[str]:
    return list(AuditEvent.objects.filter(object_type="transition_request", object_id=str(request.pk))
                .order_by("id").values_list("action", flat=True))


# ---------------------------------------------------------------- the gate


def test_a_protected_stage_opens_a_request_instead_of_moving_the_version(alice, versions):
    outcome = services.model_version_transition_stage(actor=alice, name="churn", version=2, stage="Production",
                                                      comment="ship it")
    assert not outcome.applied and outcome.request_created
    request = outcome.request
    assert (request.state, request.action, request.target, request.from_stage) == (
        State.PENDING, "transition_stage", "Production", "None")
    assert request.requester == alice and request.comment == "ship it"
    assert stage_of(2) == Stage.NONE
    assert not StageTransition.objects.exists()
    assert actions(request) == ["transition_request.created"]


def test_asking_again_returns_the_open_request(alice, versions):
    first = ask_production(alice)
    again = services.model_version_transition_stage(actor=alice, name="churn", version=2, stage="Production")
    assert again.request.pk == first.pk and not again.request_created
    assert TransitionRequest.objects.count() == 1


def test_an_unprotected_stage_changes_at_once(alice, versions):
    outcome = services.model_version_transition_stage(actor=alice, name="churn", version=2, stage="Staging")
    assert outcome.applied and stage_of(2) == Stage.STAGING
    assert not TransitionRequest.objects.exists()
    event = AuditEvent.objects.get(action="model_version.stage_changed")
    assert event.before == {"stage": "None"} and event.after["stage"] == "Staging"


def test_moving_out_of_a_protected_stage_is_governed_too(alice, root, versions):
    services.model_version_transition_stage(actor=root, name="churn", version=1, stage="Production")
    outcome = services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Archived")
    assert not outcome.applied and outcome.request.from_stage == "Production"
    assert stage_of(1) == Stage.PRODUCTION


def test_a_superusers_change_is_applied_and_audited_as_a_bypass_and_supersedes_open_requests(alice, root, versions):
    pending = ask_production(alice, version=2)
    outcome = services.model_version_transition_stage(actor=root, name="churn", version=3, stage="Production")
    assert outcome.applied and stage_of(3) == Stage.PRODUCTION
    assert AuditEvent.objects.filter(action="model_version.stage_bypassed", actor_username="root").count() == 1
    pending.refresh_from_db()
    assert pending.state == State.SUPERSEDED and "root" in pending.state_reason


def test_a_reader_cannot_ask(charlie, alice, versions):
    with pytest.raises(PermissionDenied):
        services.model_version_transition_stage(actor=charlie, name="churn", version=2, stage="Production")
    assert not TransitionRequest.objects.exists()


# ---------------------------------------------------------------- deciding


def test_approval_by_an_approver_approves_and_the_apply_step_moves_the_version(alice, bob_approves, versions):
    request = ask_production(alice)
    services.transition_request_approve(actor=bob_approves, request_id=request.pk, comment="looks good")
    request.refresh_from_db()
    assert request.state == State.APPROVED and stage_of(2) == Stage.NONE
    services.transition_request_apply(request.pk)
    request.refresh_from_db()
    assert request.state == State.APPLIED and request.applied_timestamp
    assert stage_of(2) == Stage.PRODUCTION
    transition = StageTransition.objects.get(version_number=2)
    assert transition.transition_request_id == request.pk and transition.actor is None
    assert actions(request) == [
        "transition_request.created", "transition_request.approval_added", "transition_request.approved",
        "transition_request.applied",
    ]
    change = AuditEvent.objects.get(action="model_version.stage_changed")
    assert change.after == {"stage": "Production", "transition_request": request.pk}


def test_reaching_the_approvals_enqueues_the_apply_on_commit(alice, bob_approves, versions,
                                                            django_capture_on_commit_callbacks, eager_tasks):
    request = ask_production(alice)
    with django_capture_on_commit_callbacks(execute=True):
        services.transition_request_approve(actor=bob_approves, request_id=request.pk)
    request.refresh_from_db()
    assert request.state == State.APPLIED and stage_of(2) == Stage.PRODUCTION


def test_the_requester_cannot_approve_their_own_request(alice, root, versions):
    permissions.grant_create(actor=alice, root=selectors.registered_model_get_for_user(alice, "churn"),
                             level="APPROVE", user=alice)
    request = ask_production(alice)
    with pytest.raises(PermissionDenied, match="two-person"):
        services.transition_request_approve(actor=alice, request_id=request.pk)
    request.refresh_from_db()
    assert request.state == State.PENDING and not request.decisions.exists()


def test_the_policy_may_let_the_requester_approve(alice, versions):
    permissions.grant_create(actor=alice, root=selectors.registered_model_get_for_user(alice, "churn"),
                             level="APPROVE", user=alice)
    services.policy_update(actor=alice, name="churn", protected_stages=["Production"], protected_aliases=[],
                           requester_may_approve=True)
    request = ask_production(alice)
    services.transition_request_approve(actor=alice, request_id=request.pk)
    request.refresh_from_db()
    assert request.state == State.APPROVED


def test_a_reader_without_approve_cannot_approve(alice, bob, versions):
    request = ask_production(alice)
    with pytest.raises(PermissionDenied, match="APPROVE"):
        services.transition_request_approve(actor=bob, request_id=request.pk)


def test_manage_does_not_imply_approve(alice, bob, churn, versions):
    permissions.grant_create(actor=alice, root=churn, level="MANAGE", user=bob)
    request = ask_production(alice)
    with pytest.raises(PermissionDenied):
        services.transition_request_approve(actor=bob, request_id=request.pk)


def test_someone_who_cannot_read_the_model_does_not_see_the_request(alice, charlie, churn, versions):
    services.registered_model_set_private(actor=alice, name="churn", private=True)
    request = ask_production(alice)
    with pytest.raises(NotFound):
        services.transition_request_approve(actor=charlie, request_id=request.pk)


def test_an_approver_outside_the_targets_approver_set_cannot_approve(alice, bob_approves, dave, churn, versions):
    permissions.grant_create(actor=alice, root=churn, level="APPROVE", user=dave)
    team = Group.objects.create(name="release-managers")
    dave.groups.add(team)
    services.policy_update(
        actor=alice, name="churn", protected_stages=["Production"], protected_aliases=["champion"],
        approvers={"stage:Production": {"teams": ["release-managers"]}},
    )
    request = ask_production(alice)
    with pytest.raises(PermissionDenied, match="other approvers"):
        services.transition_request_approve(actor=bob_approves, request_id=request.pk)
    services.transition_request_approve(actor=dave, request_id=request.pk)
    # bob may still decide the alias, which the narrowed set does not cover.
    alias_request = services.alias_set(actor=alice, name="churn", alias="champion", version=2).request
    services.transition_request_approve(actor=bob_approves, request_id=alias_request.pk)


def test_approving_twice_is_refused(alice, bob_approves, versions):
    services.policy_update(actor=alice, name="churn", protected_stages=["Production"], protected_aliases=[],
                           approvals_required=2)
    request = ask_production(alice)
    services.transition_request_approve(actor=bob_approves, request_id=request.pk)
    with pytest.raises(Conflict, match="already decided"):
        services.transition_request_approve(actor=bob_approves, request_id=request.pk)
    request.refresh_from_db()
    assert request.state == State.PENDING and request.decisions.count() == 1


def test_two_approvals_required_apply_only_after_the_second(alice, bob_approves, dave, churn, versions):
    permissions.grant_create(actor=alice, root=churn, level="APPROVE", user=dave)
    services.policy_update(actor=alice, name="churn", protected_stages=["Production"], protected_aliases=[],
                           approvals_required=2)
    request = ask_production(alice)
    services.transition_request_approve(actor=bob_approves, request_id=request.pk)
    services.transition_request_apply(request.pk)  # not approved yet: nothing happens
    request.refresh_from_db()
    assert request.state == State.PENDING and stage_of(2) == Stage.NONE
    services.transition_request_approve(actor=dave, request_id=request.pk)
    services.transition_request_apply(request.pk)
    request.refresh_from_db()
    assert request.state == State.APPLIED and stage_of(2) == Stage.PRODUCTION


def test_reject_ends_the_request_and_nothing_more_can_be_decided(alice, bob_approves, dave, churn, versions):
    permissions.grant_create(actor=alice, root=churn, level="APPROVE", user=dave)
    request = ask_production(alice)
    services.transition_request_reject(actor=bob_approves, request_id=request.pk, comment="metrics regressed")
    request.refresh_from_db()
    assert request.state == State.REJECTED
    with pytest.raises(Conflict, match="rejected"):
        services.transition_request_approve(actor=dave, request_id=request.pk)
    with pytest.raises(Conflict):
        services.transition_request_cancel(actor=alice, request_id=request.pk)
    assert stage_of(2) == Stage.NONE
    # a new request may be opened once the old one is final
    assert ask_production(alice).pk != request.pk


def test_the_requester_cancels_and_approving_afterwards_is_refused(alice, bob_approves, versions):
    request = ask_production(alice)
    with pytest.raises(PermissionDenied, match="requester"):
        services.transition_request_cancel(actor=bob_approves, request_id=request.pk)
    services.transition_request_cancel(actor=alice, request_id=request.pk, comment="wrong version")
    request.refresh_from_db()
    assert request.state == State.CANCELLED
    with pytest.raises(Conflict, match="cancelled"):
        services.transition_request_approve(actor=bob_approves, request_id=request.pk)


def test_an_approved_request_cancelled_before_its_task_runs_is_not_applied(alice, bob_approves, versions):
    request = ask_production(alice)
    services.transition_request_approve(actor=bob_approves, request_id=request.pk)
    services.transition_request_cancel(actor=alice, request_id=request.pk)
    services.transition_request_apply(request.pk)
    request.refresh_from_db()
    assert request.state == State.CANCELLED and stage_of(2) == Stage.NONE


def test_applying_twice_applies_once(alice, bob_approves, versions):
    request = ask_production(alice)
    services.transition_request_approve(actor=bob_approves, request_id=request.pk)
    services.transition_request_apply(request.pk)
    services.transition_request_apply(request.pk)
    assert StageTransition.objects.count() == 1
    assert AuditEvent.objects.filter(action="transition_request.applied").count() == 1


def test_a_failed_apply_can_be_retried_by_an_approver_but_not_by_the_requester(alice, bob_approves, versions,
                                                                               monkeypatch):
    from registry.services import apply as apply_steps

    request = ask_production(alice)
    services.transition_request_approve(actor=bob_approves, request_id=request.pk)
    monkeypatch.setitem(apply_steps.ALLOWED_TRANSITIONS, Stage.NONE, set())
    services.transition_request_apply(request.pk)
    request.refresh_from_db()
    assert request.state == State.FAILED and "Cannot move" in request.state_reason
    assert stage_of(2) == Stage.NONE
    monkeypatch.undo()
    with pytest.raises(PermissionDenied):
        services.transition_request_retry(actor=alice, request_id=request.pk)
    services.transition_request_retry(actor=bob_approves, request_id=request.pk)
    services.transition_request_apply(request.pk)
    request.refresh_from_db()
    assert request.state == State.APPLIED and request.apply_attempts == 2
    assert "transition_request.failed" in actions(request) and "transition_request.retried" in actions(request)


def test_applying_a_superseded_request_does_nothing(alice, bob_approves, versions):
    first, second = ask_production(alice, version=2), ask_production(alice, version=3)
    services.transition_request_approve(actor=bob_approves, request_id=first.pk)
    services.transition_request_approve(actor=bob_approves, request_id=second.pk)
    services.transition_request_apply(first.pk)
    second.refresh_from_db()
    assert second.state == State.SUPERSEDED and f"transition request {first.pk}" in second.state_reason
    services.transition_request_apply(second.pk)
    assert list(ModelVersion.objects.filter(current_stage=Stage.PRODUCTION).values_list("version", flat=True)) == [2]


def test_archive_existing_versions_is_applied_with_the_request(alice, root, bob_approves, versions):
    services.model_version_transition_stage(actor=root, name="churn", version=1, stage="Production")
    request = ask_production(alice, version=2, archive_existing_versions=True)
    services.transition_request_approve(actor=bob_approves, request_id=request.pk)
    services.transition_request_apply(request.pk)
    assert (stage_of(1), stage_of(2)) == (Stage.ARCHIVED, Stage.PRODUCTION)
    rows = StageTransition.objects.filter(transition_request=request).order_by("version_number")
    assert [(r.version_number, r.to_stage) for r in rows] == [(1, "Archived"), (2, "Production")]


def test_archiving_others_out_of_a_protected_stage_is_governed(alice, root, versions):
    services.model_version_transition_stage(actor=root, name="churn", version=1, stage="Production")
    services.model_version_transition_stage(actor=root, name="churn", version=2, stage="Production")
    outcome = services.model_version_transition_stage(
        actor=alice, name="churn", version=2, stage="Production", archive_existing_versions=True
    )
    assert not outcome.applied and stage_of(1) == Stage.PRODUCTION


# ---------------------------------------------------------------- aliases


def test_protected_aliases_set_move_and_delete_through_requests(alice, bob_approves, versions):
    services.policy_update(actor=alice, name="churn", protected_stages=["Production"], protected_aliases=["champion"])
    services.alias_set(actor=alice, name="churn", alias="candidate", version=1)  # not protected
    assert ModelAlias.objects.filter(alias="candidate").exists()

    for version in (2, 3):
        request = services.alias_set(actor=alice, name="churn", alias="champion", version=version).request
        assert request.action == "set_alias"
        services.transition_request_approve(actor=bob_approves, request_id=request.pk)
        services.transition_request_apply(request.pk)
        assert ModelAlias.objects.get(alias="champion").model_version.version == version

    request = services.alias_delete(actor=alice, name="churn", alias="champion").request
    assert request.action == "delete_alias" and request.version_number == 3
    assert ModelAlias.objects.filter(alias="champion").exists()
    services.transition_request_approve(actor=bob_approves, request_id=request.pk)
    services.transition_request_apply(request.pk)
    assert not ModelAlias.objects.filter(alias="champion").exists()
    history = AliasTransition.objects.filter(alias="champion").order_by("id")
    assert [(h.from_version_number, h.to_version_number) for h in history] == [(None, 2), (2, 3), (3, None)]
    assert all(h.transition_request_id for h in history)


# ---------------------------------------------------------------- deleting and renaming


def test_a_version_holding_a_protected_stage_is_not_deleted_and_the_message_says_how(alice, root, versions):
    services.model_version_transition_stage(actor=root, name="churn", version=1, stage="Production")
    with pytest.raises(PermissionDenied, match="Release them first"):
        services.model_version_delete(actor=alice, name="churn", version=1)
    with pytest.raises(PermissionDenied, match="version 1 in Production"):
        services.registered_model_delete(actor=alice, name="churn")
    with pytest.raises(PermissionDenied):
        services.registered_model_rename(actor=alice, name="churn", new_name="churn2")
    services.model_version_delete(actor=alice, name="churn", version=2)  # holds nothing protected


def test_deleting_a_version_supersedes_its_open_requests(alice, versions):
    request = ask_production(alice, version=2)
    services.model_version_delete(actor=alice, name="churn", version=2)
    request.refresh_from_db()
    assert request.state == State.SUPERSEDED and request.model_version is None and request.version_number == 2


# ---------------------------------------------------------------- policies


def test_policy_defaults_and_validation(alice, bob, versions):
    model, policy = services.policy_get_for_user(bob, "churn")
    assert policies.policy_as_dict(model, policy) == {
        "registered_model": "churn", "protected_stages": ["Production"], "protected_aliases": [],
        "approvals_required": 1, "requester_may_approve": False, "approvers": {},
    }
    with pytest.raises(PermissionDenied):
        services.policy_update(actor=bob, name="churn", protected_stages=[], protected_aliases=[])
    bad = [
        {"protected_stages": ["Prod"]},
        {"protected_stages": ["None"]},
        {"protected_aliases": ["bad alias!"]},
        {"approvals_required": 0},
        {"approvals_required": True},
        {"requester_may_approve": "yes"},
        {"approvers": {"stage:Staging": {"users": ["bob"]}}},
        {"approvers": {"stage:Production": {"users": ["nobody"]}}},
    ]
    for change in bad:
        args = {"protected_stages": ["Production"], "protected_aliases": [], **change}
        with pytest.raises(InvalidParameter):
            services.policy_update(actor=alice, name="churn", **args)
    assert not AuditEvent.objects.filter(action="policy.updated").exists()
    services.policy_update(actor=alice, name="churn", protected_stages=["Staging", "Production"],
                           protected_aliases=["champion"], approvers={"stage:Production": {"users": ["bob"]}})
    event = AuditEvent.objects.get(action="policy.updated")
    assert event.before["protected_stages"] == ["Production"]
    assert event.after["approvers"] == {"stage:Production": {"users": ["bob"], "teams": []}}


def test_with_nothing_protected_every_change_is_direct(alice, versions, settings):
    settings.PORTAL_PROTECTED_STAGES = []
    assert services.model_version_transition_stage(actor=alice, name="churn", version=2, stage="Production").applied
