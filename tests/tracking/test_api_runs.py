"""Runs, params, metrics, tags and datasets through the real mlflow client."""

import math
import time

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException


def code(exc_info) -> str:
    return exc_info.value.error_code


@pytest.fixture
def experiment_id(portal):
    return portal.client().create_experiment("runs-tests")


def test_tutorial_tracking_code_reads_back_what_it_wrote(portal, experiment_id):
    mlflow.set_experiment(experiment_id=experiment_id)
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"l1_ratio": 0.1, "solver": "saga"})
        for step in range(10):
            mlflow.log_metric("rmse", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"r2": 0.8, "mae": 0.3})
        mlflow.set_tag("team", "growth")
        mlflow.set_tags({"release": "candidate", "owner": "alice"})
    got = portal.client().get_run(run.info.run_id)
    assert got.info.run_name == "baseline"
    assert got.info.status == "FINISHED"
    assert got.info.end_time >= got.info.start_time
    assert got.data.params == {"alpha": "0.5", "l1_ratio": "0.1", "solver": "saga"}
    assert got.data.metrics == {"rmse": 0.1, "r2": 0.8, "mae": 0.3}
    assert got.data.tags["team"] == "growth" and got.data.tags["release"] == "candidate"
    history = portal.client().get_metric_history(run.info.run_id, "rmse")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(10)]


def test_nan_and_infinities_round_trip(portal, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "nan", float("nan"))
    client.log_metric(run.info.run_id, "pinf", float("inf"))
    client.log_batch(run.info.run_id, metrics=[Metric("ninf", float("-inf"), int(time.time() * 1000), 0)])
    metrics = client.get_run(run.info.run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["pinf"] == math.inf and metrics["ninf"] == -math.inf
    assert math.isnan(client.get_metric_history(run.info.run_id, "nan")[0].value)


def test_runs_json_carries_nan_and_infinities_as_strings_and_keys_in_order(portal, alice, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [
        Metric(k, v, now, 0) for k, v in [("z", 0.5), ("nan", math.nan), ("pinf", math.inf), ("ninf", -math.inf)]
    ]
    client.log_batch(
        run_id,
        metrics=metrics,
        params=[Param("b", "2"), Param("a", "1")],
        tags=[RunTag("y", "2"), RunTag("x", "1")],
    )
    session = portal.session(alice)
    got = session.get(f"{portal.url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}).json()["run"]
    found = session.post(
        f"{portal.url}/api/2.0/mlflow/runs/search", json={"experiment_ids": [experiment_id], "max_results": 10}
    ).json()["runs"]
    assert [r["info"]["run_id"] for r in found] == [run_id]
    for data in (got["data"], found[0]["data"]):
        assert [(m["key"], m["value"]) for m in data["metrics"]] == [
            ("nan", "NaN"),
            ("ninf", "-Infinity"),
            ("pinf", "Infinity"),
            ("z", 0.5),
        ]
        assert data["params"] == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
        assert [t["key"] for t in data["tags"] if not t["key"].startswith("mlflow.")] == ["x", "y"]


def test_summary_metric_is_the_highest_step_not_the_last_logged(portal, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "loss", 0.1, step=5)
    client.log_metric(run.info.run_id, "loss", 0.9, step=1)
    assert client.get_run(run.info.run_id).data.metrics["loss"] == 0.1


def test_params_are_immutable(portal, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "lr", "0.1")
    client.log_param(run.info.run_id, "lr", "0.1")  # the same value again is fine
    with pytest.raises(MlflowException) as exc:
        client.log_param(run.info.run_id, "lr", "0.2")
    assert code(exc) == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run.info.run_id).data.params == {"lr": "0.1"}


def test_log_batch_is_all_or_nothing(portal, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "fixed", "1")
    now = int(time.time() * 1000)
    with pytest.raises(MlflowException) as exc:
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("m", 1.0, now, 0)],
            params=[Param("new", "x"), Param("fixed", "2")],
            tags=[RunTag("t", "v")],
        )
    assert code(exc) == "INVALID_PARAMETER_VALUE"
    data = client.get_run(run.info.run_id).data
    assert data.metrics == {} and data.params == {"fixed": "1"} and "t" not in data.tags


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"metrics": [{"key": "m", "value": 1, "timestamp": 0, "step": 0}] * 1001}, "at most 1000 metrics"),
        ({"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}, "at most 100 params"),
        ({"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]}, "at most 100 tags"),
        ({"params": [{"key": "p", "value": "x" * 6001}]}, "length limit of 6000"),
        ({"tags": [{"key": "t", "value": "x" * 8001}]}, "length limit of 8000"),
        ({"params": [{"key": "k" * 251, "value": "v"}]}, "length limit of 250"),
        ({"metrics": [{"key": "../escape", "value": 1, "timestamp": 0, "step": 0}]}, "resolve to"),
        ({"metrics": [{"key": "bad*key", "value": 1, "timestamp": 0, "step": 0}]}, "Names may only contain"),
        ({"metrics": [{"key": "m", "value": "abc", "timestamp": 0, "step": 0}]}, "expected a double"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": -5, "step": 0}]}, "at least 0"),
        ({"metrics": [{"key": "m", "value": 1, "step": 0}]}, "timestamp"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": True, "step": 0}]}, "timestamp of metric 'm'"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": 2**63, "step": 0}]}, "out of 64-bit range"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": 0, "step": -(2**63) - 1}]}, "step of metric 'm'"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": 0, "step": 1.5}]}, "step of metric 'm'"),
    ],
)
def test_log_batch_limits_and_bad_values(portal, alice, experiment_id, body, fragment):
    run = portal.client().create_run(experiment_id)
    response = portal.session(alice).post(
        f"{portal.url}/api/2.0/mlflow/runs/log-batch", json={"run_id": run.info.run_id, **body}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert fragment in response.json()["message"]


def test_relogging_the_same_metric_point_does_not_grow_history(portal, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    point = Metric("acc", 0.9, 1_700_000_000_000, 0)
    client.log_batch(run.info.run_id, metrics=[point])
    client.log_batch(run.info.run_id, metrics=[point])
    assert len(client.get_metric_history(run.info.run_id, "acc")) == 1


def test_update_run_status_end_time_and_name(portal, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    client.update_run(run.info.run_id, status="KILLED", name="renamed")
    got = client.get_run(run.info.run_id)
    assert got.info.status == "KILLED" and got.info.run_name == "renamed"
    assert got.data.tags["mlflow.runName"] == "renamed"
    client.set_terminated(run.info.run_id, status="FAILED", end_time=1234)
    assert client.get_run(run.info.run_id).info.end_time == 1234


def test_runs_get_random_names_when_none_given(portal, experiment_id):
    run = portal.client().create_run(experiment_id)
    assert run.info.run_name and run.data.tags["mlflow.runName"] == run.info.run_name


def test_delete_and_restore_run(portal, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as exc:
        client.log_param(run.info.run_id, "p", "v")
    assert code(exc) == "INVALID_PARAMETER_VALUE"
    client.restore_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"


def test_delete_tag(portal, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    client.set_tag(run.info.run_id, "drop-me", "x")
    client.delete_tag(run.info.run_id, "drop-me")
    assert "drop-me" not in client.get_run(run.info.run_id).data.tags
    with pytest.raises(MlflowException) as exc:
        client.delete_tag(run.info.run_id, "drop-me")
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_missing_run_is_resource_does_not_exist(portal):
    with pytest.raises(MlflowException) as exc:
        portal.client().get_run("0" * 32)
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_create_run_in_missing_experiment(portal):
    with pytest.raises(MlflowException) as exc:
        portal.client().create_run("987654")
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_anyone_signed_in_can_log_to_the_default_experiment(portal, bob):
    portal.act_as(bob)
    run = portal.client().create_run("0")
    portal.client().log_param(run.info.run_id, "who", "bob")
    assert portal.client().get_run(run.info.run_id).data.params == {"who": "bob"}


def test_other_users_cannot_write_to_a_run(portal, bob, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    portal.act_as(bob)
    assert client.get_run(run.info.run_id).info.run_id == run.info.run_id
    for write in (
        lambda: client.log_param(run.info.run_id, "p", "v"),
        lambda: client.log_metric(run.info.run_id, "m", 1.0),
        lambda: client.set_tag(run.info.run_id, "t", "v"),
        lambda: client.delete_run(run.info.run_id),
        lambda: client.update_run(run.info.run_id, status="KILLED"),
    ):
        with pytest.raises(MlflowException) as exc:
            write()
        assert code(exc) == "PERMISSION_DENIED"


def test_metric_history_pages(portal, alice, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    now = int(time.time() * 1000)
    client.log_batch(run.info.run_id, metrics=[Metric("m", float(i), now, i) for i in range(25)])
    session = portal.session(alice)
    steps, token = [], None
    while True:
        params = {"run_id": run.info.run_id, "metric_key": "m", "max_results": 10}
        if token:
            params["page_token"] = token
        body = session.get(f"{portal.url}/api/2.0/mlflow/metrics/get-history", params=params).json()
        steps += [m["step"] for m in body["metrics"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert steps == list(range(25))


def test_metric_history_bulk_interval_samples_evenly(portal, alice, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    now = int(time.time() * 1000)
    for start in range(0, 3000, 1000):
        client.log_batch(run.info.run_id, metrics=[Metric("m", float(i), now, i) for i in range(start, start + 1000)])
    body = (
        portal.session(alice)
        .get(
            f"{portal.url}/api/2.0/mlflow/metrics/get-history-bulk-interval",
            params={"run_ids": [run.info.run_id], "metric_key": "m", "max_results": 100},
        )
        .json()
    )
    steps = [m["step"] for m in body["metrics"]]
    assert len(steps) == 100 and steps[0] == 0 and steps[-1] == 2999
    assert all(m["run_id"] == run.info.run_id for m in body["metrics"])


def test_log_inputs_records_datasets(portal, experiment_id):
    mlflow.set_experiment(experiment_id=experiment_id)
    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(frame, name="toy", targets="y")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
    inputs = portal.client().get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "toy"
    assert inputs[0].dataset.digest == dataset.digest
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"


def test_search_runs_filters_and_orders(portal, experiment_id):
    client = portal.client()
    ids = {}
    for i in range(5):
        run = client.create_run(experiment_id, run_name=f"r{i}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", i / 10, 0, 0)],
            params=[Param("depth", str(i % 2))],
            tags=[RunTag("family", "tree" if i < 3 else "linear")],
        )
        ids[i] = run.info.run_id
    found = client.search_runs(
        [experiment_id],
        filter_string="metrics.acc > 0.1 AND params.depth = '0' AND tags.family LIKE 'tr%'",
        order_by=["metrics.acc DESC"],
    )
    assert [r.info.run_id for r in found] == [ids[2]]
    ordered = client.search_runs([experiment_id], order_by=["metrics.acc ASC"])
    assert [r.info.run_id for r in ordered] == [ids[i] for i in range(5)]


def test_search_runs_pages_visit_every_run_once(portal, experiment_id):
    client = portal.client()
    created = {client.create_run(experiment_id, start_time=1000).info.run_id for _ in range(7)}
    seen, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=3, page_token=token)
        seen += [r.info.run_id for r in page]
        token = page.token
        if not token:
            break
    assert len(seen) == 7 and set(seen) == created


def test_search_runs_view_type_and_bad_filter(portal, experiment_id):
    client = portal.client()
    keep = client.create_run(experiment_id).info.run_id
    gone = client.create_run(experiment_id).info.run_id
    client.delete_run(gone)
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [keep]
    deleted = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [gone]
    with pytest.raises(MlflowException) as exc:
        client.search_runs([experiment_id], filter_string="metrics.acc >>> 1")
    assert code(exc) == "INVALID_PARAMETER_VALUE"


def test_mlflow_search_runs_returns_pandas(portal, experiment_id):
    mlflow.set_experiment(experiment_id=experiment_id)
    for lr in (0.1, 0.2):
        with mlflow.start_run():
            mlflow.log_param("lr", lr)
            mlflow.log_metric("loss", lr * 2)
    frame = mlflow.search_runs(experiment_ids=[experiment_id], order_by=["metrics.loss DESC"])
    assert list(frame["params.lr"]) == ["0.2", "0.1"]
    assert list(frame["metrics.loss"]) == [0.4, 0.2]
