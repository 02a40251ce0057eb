"""Races around applying a request, on PostgreSQL: decisions and apply runs that reach the
registered model's row lock at the same moment still apply a change exactly once.

Each racer is a thread with its own database connection. The test holds the model row's
lock (tests/workers.RowLock) until every racer waits for it in pg_stat_activity, then lets
them go, so they really contend instead of merely running one after the other. SQLite
takes one writer at a time and has no row locks: these tests need PostgreSQL (CI's second
leg). No worker is involved: the apply step is called directly, or Celery runs eagerly.
"""

import threading

import pytest
from django.db import connection

from portal import permissions
from portal.errors import Conflict
from portal.models import AuditEvent
from registry import services
from registry.models import ModelVersion, RegisteredModel, Stage, StageTransition, TransitionRequest
from tests.conftest import make_user
from tests.workers import RowLock, use_broker, wait_until, waiting_on_lock

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="races need PostgreSQL's row locks (SQLite serialises writers)"
    ),
    pytest.mark.django_db(transaction=True),
    pytest.mark.governed,
]

State = TransitionRequest.State


@pytest.fixture
def approvers(alice, churn):
    """bob, dave and erin, each with APPROVE on churn."""
    users = [make_user(name) for name in ("bob", "dave", "erin")]
    for user in users:
        permissions.grant_create(actor=alice, root=churn, level="APPROVE", user=user)
    return users


@pytest.fixture
def eager():
    """Tasks run in this process when their transaction commits (the approving thread applies)."""
    with use_broker("memory://", eager=True):
        yield


@pytest.fixture
def queued_nowhere():
    """Tasks are sent to an in-process broker nobody reads: the test applies by hand."""
    with use_broker("memory://"):
        yield


def race(churn, *calls) -> list:
    """Run `calls` at once, each in a thread of its own, released together once all of them
    wait for churn's row lock. Returns each call's result or the exception it raised."""
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            outcomes[index] = call()
        except Exception as exc:  # reported to the test, which says which ones are allowed
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    with RowLock(RegisteredModel, churn.pk):
        for thread in threads:
            thread.start()
        wait_until(lambda: waiting_on_lock() == len(calls), timeout=20, what=f"{len(calls)} racers to wait")
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return outcomes


def ask_production(actor, number: int) -> TransitionRequest:
    outcome = services.model_version_transition_stage(actor=actor, name="churn", version=number, stage="Production")
    assert not outcome.applied
    return outcome.request


def state_of(request: TransitionRequest) -> str:
    return TransitionRequest.objects.get(pk=request.pk).state


def stage_of(number: int) -> str:
    return ModelVersion.objects.get(registered_model__name="churn", version=number).current_stage


def applied_events(request: TransitionRequest) -> int:
    return AuditEvent.objects.filter(action="transition_request.applied", object_id=str(request.pk)).count()


@pytest.mark.parametrize("required", [1, 2])
def test_approvals_racing_apply_the_request_once_and_refuse_the_late_ones(required, alice, approvers, churn, versions,
                                                                         eager):
    services.policy_update(actor=alice, name="churn", protected_stages=["Production"], protected_aliases=[],
                           approvals_required=required)
    request = ask_production(alice, 1)
    racers = approvers[: required + 1]

    outcomes = race(churn, *[
        (lambda user=user: services.transition_request_approve(actor=user, request_id=request.pk))
        for user in racers
    ])

    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], Conflict), outcomes
    assert request.decisions.count() == required
    assert state_of(request) == State.APPLIED and stage_of(1) == Stage.PRODUCTION
    assert StageTransition.objects.filter(transition_request=request).count() == 1
    assert applied_events(request) == 1
    assert AuditEvent.objects.filter(action="transition_request.approved", object_id=str(request.pk)).count() == 1


def test_one_approver_approving_twice_at_once_is_counted_once(alice, approvers, churn, versions, eager):
    services.policy_update(actor=alice, name="churn", protected_stages=["Production"], protected_aliases=[],
                           approvals_required=2)
    request = ask_production(alice, 1)
    bob = approvers[0]

    outcomes = race(churn, *[lambda: services.transition_request_approve(actor=bob, request_id=request.pk)] * 2)

    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], Conflict), outcomes
    assert request.decisions.count() == 1
    assert state_of(request) == State.PENDING and stage_of(1) == Stage.NONE


def test_two_approved_requests_for_production_racing_apply_one_and_supersede_the_other(alice, approvers, churn,
                                                                                       versions, queued_nowhere):
    bob = approvers[0]
    first, second = ask_production(alice, 1), ask_production(alice, 2)
    for request in (first, second):
        services.transition_request_approve(actor=bob, request_id=request.pk)
    assert (state_of(first), state_of(second)) == (State.APPROVED, State.APPROVED)

    outcomes = race(churn, lambda: services.transition_request_apply(first.pk),
                    lambda: services.transition_request_apply(second.pk))

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    states = {state_of(first): first, state_of(second): second}
    assert set(states) == {State.APPLIED, State.SUPERSEDED}
    winner, loser = states[State.APPLIED], states[State.SUPERSEDED]
    assert stage_of(winner.version_number) == Stage.PRODUCTION and stage_of(loser.version_number) == Stage.NONE
    assert ModelVersion.objects.filter(current_stage=Stage.PRODUCTION).count() == 1
    assert list(StageTransition.objects.values_list("transition_request_id", flat=True)) == [winner.pk]
    assert (applied_events(winner), applied_events(loser)) == (1, 0)
    assert TransitionRequest.objects.get(pk=loser.pk).state_reason == f"{winner} changed stage Production first."


def test_the_same_apply_task_delivered_twice_at_once_applies_once(alice, approvers, churn, versions, queued_nowhere):
    request = ask_production(alice, 1)
    services.transition_request_approve(actor=approvers[0], request_id=request.pk)

    outcomes = race(churn, *[lambda: services.transition_request_apply(request.pk)] * 3)

    assert all(isinstance(o, TransitionRequest) and o.state == State.APPLIED for o in outcomes), outcomes
    request.refresh_from_db()
    assert request.state == State.APPLIED and request.apply_attempts == 1
    assert StageTransition.objects.filter(transition_request=request).count() == 1
    assert applied_events(request) == 1
