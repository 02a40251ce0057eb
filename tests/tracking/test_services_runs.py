import math

import pytest

from portal.errors import InvalidParameter, NotFound, PermissionDenied
from tests.factories import make_experiment, make_run
from tracking.models import LatestMetric, Metric, Param
from tracking.services import runs as run_services


def point(key="m", value=1.0, timestamp=0, step=0, **extra):
    return {"key": key, "value": value, "timestamp": timestamp, "step": step, **extra}


@pytest.fixture
def run(alice):
    return make_run(owner=alice, experiment=make_experiment(owner=alice))


def latest(run, key="m"):
    return LatestMetric.objects.get(run=run, key=key)


def test_latest_metric_prefers_highest_step(alice, run):
    run_services.run_log_batch(actor=alice, run_id=run.pk, metrics=[point(value=1, step=3), point(value=2, step=1)])
    assert latest(run).value == 1
    run_services.run_log_batch(actor=alice, run_id=run.pk, metrics=[point(value=5, step=2)])
    assert latest(run).value == 1


def test_latest_metric_breaks_step_ties_by_timestamp(alice, run):
    run_services.run_log_batch(actor=alice, run_id=run.pk, metrics=[point(value=1, timestamp=10)])
    run_services.run_log_batch(actor=alice, run_id=run.pk, metrics=[point(value=2, timestamp=20)])
    run_services.run_log_batch(actor=alice, run_id=run.pk, metrics=[point(value=3, timestamp=15)])
    assert latest(run).value == 2


def test_nan_is_kept_as_nan(alice, run):
    run_services.run_log_batch(actor=alice, run_id=run.pk, metrics=[point(value=math.nan)])
    row = Metric.objects.get(run=run)
    assert row.is_nan and latest(run).is_nan


def test_history_keeps_every_distinct_point(alice, run):
    run_services.run_log_batch(actor=alice, run_id=run.pk, metrics=[point(step=i) for i in range(5)])
    run_services.run_log_batch(actor=alice, run_id=run.pk, metrics=[point(step=i) for i in range(5)])
    run_services.run_log_batch(actor=alice, run_id=run.pk, metrics=[point(step=0, value=2.0)])
    assert Metric.objects.filter(run=run).count() == 6


def test_param_with_another_value_fails_and_keeps_the_first(alice, run):
    run_services.run_log_param(actor=alice, run_id=run.pk, key="lr", value="0.1")
    with pytest.raises(InvalidParameter, match="Changing param values is not allowed"):
        run_services.run_log_param(actor=alice, run_id=run.pk, key="lr", value="0.2")
    assert Param.objects.get(run=run, key="lr").value == "0.1"


def test_duplicate_param_keys_with_different_values_in_one_batch_fail(alice, run):
    with pytest.raises(InvalidParameter, match="Duplicate parameter keys"):
        run_services.run_log_batch(
            actor=alice, run_id=run.pk, params=[{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]
        )


def test_failed_batch_writes_nothing(alice, run):
    run_services.run_log_param(actor=alice, run_id=run.pk, key="fixed", value="1")
    with pytest.raises(InvalidParameter):
        run_services.run_log_batch(
            actor=alice,
            run_id=run.pk,
            metrics=[point()],
            params=[{"key": "fresh", "value": "x"}, {"key": "fixed", "value": "2"}],
            tags=[{"key": "t", "value": "v"}],
        )
    assert not Metric.objects.filter(run=run).exists()
    assert list(Param.objects.filter(run=run).values_list("key", flat=True)) == ["fixed"]
    assert not run.tags.filter(key="t").exists()


def test_setting_the_run_name_tag_renames_the_run(alice, run):
    run_services.run_set_tag(actor=alice, run_id=run.pk, key="mlflow.runName", value="renamed")
    run.refresh_from_db()
    assert run.name == "renamed"


def test_outsider_cannot_log(alice, charlie, run):
    with pytest.raises(PermissionDenied):
        run_services.run_log_batch(actor=charlie, run_id=run.pk, metrics=[point()])


def test_missing_run_is_not_found(alice):
    with pytest.raises(NotFound):
        run_services.run_log_batch(actor=alice, run_id="f" * 32, metrics=[point()])


def test_run_name_and_run_name_tag_must_agree(alice):
    experiment = make_experiment(owner=alice)
    with pytest.raises(InvalidParameter, match="different values"):
        run_services.run_create(
            actor=alice, experiment_id=str(experiment.pk), run_name="a", tags=[{"key": "mlflow.runName", "value": "b"}]
        )


def test_runs_cannot_be_created_in_a_deleted_experiment(alice):
    from tracking.services.experiments import experiment_delete

    experiment = make_experiment(owner=alice)
    experiment_delete(actor=alice, experiment_id=str(experiment.pk))
    with pytest.raises(InvalidParameter, match="active"):
        make_run(owner=alice, experiment=experiment)


def test_restoring_an_experiment_only_restores_runs_deleted_with_it(alice):
    from tracking.services.experiments import experiment_delete, experiment_restore

    experiment = make_experiment(owner=alice)
    earlier = make_run(owner=alice, experiment=experiment)
    kept = make_run(owner=alice, experiment=experiment)
    run_services.run_delete(actor=alice, run_id=earlier.pk)
    earlier.refresh_from_db()
    # make the earlier deletion distinguishable from the experiment's
    type(earlier).objects.filter(pk=earlier.pk).update(deleted_time=1)
    experiment_delete(actor=alice, experiment_id=str(experiment.pk))
    experiment_restore(actor=alice, experiment_id=str(experiment.pk))
    earlier.refresh_from_db()
    kept.refresh_from_db()
    assert earlier.lifecycle_stage == "deleted" and kept.lifecycle_stage == "active"
