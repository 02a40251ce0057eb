"""Approvals are applied by a real Celery worker, exactly once, even through faults.

PostgreSQL + Redis only (CI's second leg): each test runs `celery -A portal worker` in a
subprocess on the test database (tests/workers.py), its Redis keys under a prefix of its own,
and sends tasks from this process through the settings' broker. The tests are transactional,
so the worker sees what they commit. Faults: the worker killed with SIGKILL while it applies
(its whole process, or its pool process), and the broker down when the request is approved.
A worker is held mid-apply by a row lock this process takes once the request is approved, not
by a hook in the code: the apply waits for the lock, visibly, in pg_stat_activity.
"""

import logging
import os
import re
import signal

import pytest
from django.conf import settings

from portal import permissions
from portal.models import AuditEvent
from registry import services
from registry.models import ModelVersion, RegisteredModel, Stage, StageTransition, TransitionRequest
from tests.workers import (
    CeleryWorker,
    RowLock,
    backends_of,
    isolated_transport_options,
    new_key_prefix,
    redis_delete_prefix,
    tables_written_by,
    use_broker,
    wait_until,
    why_no_workers,
)

pytestmark = [
    pytest.mark.skipif(why_no_workers() is not None, reason=f"worker tests: {why_no_workers()}"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.governed,
]

State = TransitionRequest.State
APPLY_TIMEOUT = 30  # seconds, for a worker to start and apply


@pytest.fixture
def key_prefix():
    """This test's Redis key prefix; its keys are deleted afterwards, whatever is left in them."""
    prefix = new_key_prefix()
    yield prefix
    redis_delete_prefix(prefix)


@pytest.fixture
def broker(key_prefix):
    """Tasks this process sends go through the settings' Redis, under the test's prefix."""
    with use_broker(settings.CELERY_BROKER_URL, transport_options=isolated_transport_options(key_prefix)):
        yield key_prefix


@pytest.fixture
def start_worker(transactional_db, key_prefix, tmp_path):
    """start_worker(**options) -> a CeleryWorker on this test's prefix (starting, not yet ready).
    Every worker is stopped at teardown, before the test database is flushed."""
    started: list[CeleryWorker] = []

    def start(**options) -> CeleryWorker:
        worker = CeleryWorker(key_prefix=key_prefix, log_dir=tmp_path, **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def bob_approves(alice, bob, churn):
    permissions.grant_create(actor=alice, root=churn, level="APPROVE", user=bob)
    return bob


def ask_production(actor, number: int) -> TransitionRequest:
    outcome = services.model_version_transition_stage(actor=actor, name="churn", version=number, stage="Production")
    assert not outcome.applied
    return outcome.request


def state_of(request: TransitionRequest) -> str:
    return TransitionRequest.objects.get(pk=request.pk).state


def stage_of(number: int) -> str:
    return ModelVersion.objects.get(registered_model__name="churn", version=number).current_stage


def wait_for_applied(request: TransitionRequest, *workers: CeleryWorker) -> None:
    def applied():
        for worker in workers:
            assert worker.process.poll() is None, f"worker exited:\n{worker.log()}"
        return state_of(request) == State.APPLIED

    wait_until(applied, timeout=APPLY_TIMEOUT, what=f"{request} to be applied", interval=0.2,
               on_timeout=lambda: "\n".join(worker.log() for worker in workers))


def assert_applied_once(request: TransitionRequest, number: int) -> None:
    request.refresh_from_db()
    assert request.state == State.APPLIED
    assert request.apply_attempts == 1
    assert stage_of(number) == Stage.PRODUCTION
    transitions = StageTransition.objects.filter(registered_model__name="churn", version_number=number)
    assert [(t.from_stage, t.to_stage, t.transition_request_id) for t in transitions] == [
        (Stage.NONE, Stage.PRODUCTION, request.pk)
    ]
    assert AuditEvent.objects.filter(action="transition_request.applied", object_id=str(request.pk)).count() == 1
    assert AuditEvent.objects.filter(action="model_version.stage_changed", object_type="model_version",
                                     object_id=str(transitions[0].model_version_id)).count() == 1


def assert_worker_applied(worker: CeleryWorker) -> None:
    """The worker's log shows the apply task succeeding with the request applied."""
    log = worker.log()
    assert re.search(r"Task registry\.tasks\.transition_request_apply\[[-0-9a-f]+\] succeeded in \S+: 'applied'",
                     log), log


def test_an_approved_request_is_applied_once_by_a_worker_through_redis(alice, bob_approves, versions, broker,
                                                                        start_worker):
    worker = start_worker().wait_ready()
    request = ask_production(alice, 1)

    services.transition_request_approve(actor=bob_approves, request_id=request.pk)

    wait_for_applied(request, worker)
    assert_applied_once(request, 1)
    assert_worker_applied(worker)


# Two ways the task of a dead worker comes back. Redis hands out again what a worker took and
# never acknowledged once it is older than the visibility timeout (an hour in production, a
# second here, checked at start and then every second); the beat sweep re-queues approved
# requests that are still not applied, whatever happened to their task.
RECOVERIES = {
    "visibility timeout": {"extra_transport_options": {
        "visibility_timeout": 1, "unacked_restore_interval": 1, "unacked_restore_throttle": 1,
    }},
    "beat sweep": {"beat": True, "env": {
        "PORTAL_APPLY_SWEEP_AFTER_SECONDS": "0",
        "PORTAL_APPLY_SWEEP_INTERVAL_SECONDS": "1",
        "PORTAL_WEBHOOK_SWEEP_INTERVAL_SECONDS": "3600",
    }},
}


@pytest.mark.parametrize(("held_at", "recovery"), [
    pytest.param("before its first write", "visibility timeout", id="before-writing-visibility-timeout"),
    pytest.param("after its writes, before commit", "beat sweep", id="after-writing-beat-sweep"),
])
def test_a_worker_killed_mid_apply_leaves_the_task_to_the_next_worker(held_at, recovery, alice, bob_approves, churn,
                                                                     versions, broker, start_worker):
    request = ask_production(alice, 1)
    # Applying supersedes version 2's open request for Production, locking it after the
    # change, the history row and the audit events are written, uncommitted.
    other = ask_production(alice, 2)
    services.transition_request_approve(actor=bob_approves, request_id=request.pk)
    held = (RegisteredModel, churn.pk) if held_at.startswith("before") else (TransitionRequest, other.pk)

    with RowLock(*held):
        first = start_worker()
        wait_until(lambda: backends_of(first.application_name, waiting_on_lock=True), timeout=APPLY_TIMEOUT,
                   what="the worker to wait for the lock inside the apply", on_timeout=first.log)
        written = tables_written_by(first.application_name)
        first.kill()

    if held_at.startswith("before"):
        assert not written
    else:
        assert {StageTransition._meta.db_table, ModelVersion._meta.db_table, AuditEvent._meta.db_table} <= written

    # The dead worker's transaction never commits: its server process ends once the lock it
    # waited for is granted and it finds its client gone.
    wait_until(lambda: not backends_of(first.application_name), timeout=20,
               what="the killed worker's database connection to end")
    assert state_of(request) == State.APPROVED and stage_of(1) == Stage.NONE
    assert not StageTransition.objects.exists()

    second = start_worker(**RECOVERIES[recovery])
    wait_for_applied(request, second)
    assert_applied_once(request, 1)
    assert_worker_applied(second)
    assert state_of(other) == State.SUPERSEDED
    if recovery == "beat sweep":
        assert f"re-queued 1 approved transition request(s): [{request.pk}]" in second.log()


def test_a_pool_process_killed_mid_apply_is_rejected_and_run_again(alice, bob_approves, churn, versions, broker,
                                                                  start_worker):
    request = ask_production(alice, 1)
    services.transition_request_approve(actor=bob_approves, request_id=request.pk)

    with RowLock(RegisteredModel, churn.pk):
        worker = start_worker(pool="prefork")
        wait_until(lambda: backends_of(worker.application_name, waiting_on_lock=True), timeout=APPLY_TIMEOUT,
                   what="the pool process to wait for the lock inside the apply", on_timeout=worker.log)
        first_attempt = set(backends_of(worker.application_name, waiting_on_lock=True))
        (child,) = worker.pool_children()
        os.kill(child, signal.SIGKILL)
        # acks_late + reject_on_worker_lost: the worker puts the message back and its new
        # pool process takes it, and waits for the lock on a connection of its own.
        wait_until(lambda: set(backends_of(worker.application_name, waiting_on_lock=True)) - first_attempt,
                   timeout=APPLY_TIMEOUT, what="the task to run again in a new pool process", on_timeout=worker.log)

    wait_for_applied(request, worker)
    assert_applied_once(request, 1)
    assert_worker_applied(worker)
    assert "WorkerLostError" in worker.log()


def test_an_approval_made_while_the_broker_is_down_is_applied_after_the_beat_sweep(
    alice, bob_approves, versions, broker, start_worker, caplog
):
    request = ask_production(alice, 1)

    # Nothing listens on port 1: publishing fails after Celery's short publish retries.
    with use_broker("redis://127.0.0.1:1/0"), caplog.at_level(logging.ERROR, logger="django.db.backends.base"):
        approved = services.transition_request_approve(actor=bob_approves, request_id=request.pk)

    # robust on_commit: the approval is committed although its task could not be sent.
    assert approved.state == State.APPROVED and state_of(request) == State.APPROVED
    assert any("enqueue_apply" in record.getMessage() for record in caplog.records), caplog.text

    worker = start_worker(**RECOVERIES["beat sweep"])
    wait_for_applied(request, worker)
    assert_applied_once(request, 1)
    assert_worker_applied(worker)
    assert f"re-queued 1 approved transition request(s): [{request.pk}]" in worker.log()
