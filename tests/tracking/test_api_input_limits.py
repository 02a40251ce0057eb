"""What the MLflow door takes from a request body for runs and experiments: who a run
belongs to, numbers a double cannot hold, and strings longer than their column."""

import json

import pytest

from portal.services import api_token_create
from tests.factories import make_experiment, make_run
from tests.portal.helpers import bearer
from tracking.models import Experiment, LatestMetric, Metric, RunModelInput
from tracking.services.experiments import MAX_ARTIFACT_LOCATION_LENGTH

API = "/api/2.0/mlflow"
A_400_DIGIT_INTEGER = "1" + "0" * 399
A_41_CHARACTER_MODEL_ID = "m-" + "0" * 39


@pytest.fixture
def token(alice):
    return api_token_create(user=alice, name="tests").raw


@pytest.fixture
def experiment(alice):
    return make_experiment(owner=alice, name="limits")


@pytest.fixture
def run(alice, experiment):
    return make_run(owner=alice, experiment=experiment)


def post(client, token, path, body):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(f"{API}/{path}", data=data, content_type="application/json", **bearer(token))


def get(client, token, path, **query):
    return client.get(f"{API}/{path}", query, **bearer(token))


def error_code(response) -> str:
    return response.json()["error_code"]


# ---------------------------------------------------------------- a run's user is who created it


def test_a_run_belongs_to_the_authenticated_user_whatever_user_id_the_body_claims(client, token, experiment):
    created = post(client, token, "runs/create", {"experiment_id": str(experiment.pk), "user_id": "bob"})
    assert created.status_code == 200
    run_id = created.json()["run"]["info"]["run_id"]

    got = get(client, token, "runs/get", run_id=run_id)

    assert got.json()["run"]["info"]["user_id"] == "alice"


def test_searching_for_bobs_runs_does_not_find_alices_run_claiming_to_be_his(client, token, experiment):
    post(client, token, "runs/create", {"experiment_id": str(experiment.pk), "user_id": "bob"})

    found = post(
        client, token, "runs/search", {"experiment_ids": [str(experiment.pk)], "filter": "attributes.user_id = 'bob'"}
    )

    assert found.status_code == 200
    assert found.json().get("runs", []) == []


# ---------------------------------------------------------------- numbers a double cannot hold


def test_a_400_digit_integer_metric_value_is_refused_by_log_metric(client, token, run):
    body = f'{{"run_id": "{run.pk}", "key": "loss", "value": {A_400_DIGIT_INTEGER}, "timestamp": 1, "step": 0}}'

    response = post(client, token, "runs/log-metric", body)

    assert response.status_code == 400
    assert error_code(response) == "INVALID_PARAMETER_VALUE"
    assert not LatestMetric.objects.filter(run=run).exists()


def test_a_400_digit_integer_metric_value_is_refused_by_log_batch(client, token, run):
    body = (
        f'{{"run_id": "{run.pk}", "metrics": '
        f'[{{"key": "loss", "value": {A_400_DIGIT_INTEGER}, "timestamp": 1, "step": 0}}]}}'
    )

    response = post(client, token, "runs/log-batch", body)

    assert response.status_code == 400
    assert error_code(response) == "INVALID_PARAMETER_VALUE"
    assert not Metric.objects.filter(run=run).exists()


def test_an_integer_beyond_pythons_conversion_limit_is_refused(client, token, run):
    body = f'{{"run_id": "{run.pk}", "key": "loss", "value": 1{"0" * 5000}, "timestamp": 1}}'

    response = post(client, token, "runs/log-metric", body)

    assert response.status_code == 400


# ---------------------------------------------------------------- artifact locations fit their columns


def test_an_artifact_location_of_5000_characters_is_refused(client, token):
    location = "mlflow-artifacts:/" + "a" * 4982

    response = post(client, token, "experiments/create", {"name": "long-location", "artifact_location": location})

    assert response.status_code == 400
    assert error_code(response) == "INVALID_PARAMETER_VALUE"
    assert "length limit" in response.json()["message"]
    assert not Experiment.objects.filter(name="long-location").exists()


def test_the_longest_artifact_location_leaves_room_for_runs_and_logged_models(client, token):
    segments = ["a" * 200] * 10
    location = ("mlflow-artifacts:/" + "/".join(segments))[:MAX_ARTIFACT_LOCATION_LENGTH].rstrip("/")
    created = post(client, token, "experiments/create", {"name": "longest", "artifact_location": location})
    assert created.status_code == 200, created.content
    experiment_id = created.json()["experiment_id"]

    run = post(client, token, "runs/create", {"experiment_id": experiment_id}).json()["run"]
    model = post(client, token, "logged-models", {"experiment_id": experiment_id}).json()["model"]
    listed = get(client, token, "artifacts/list", run_id=run["info"]["run_id"])

    assert len(run["info"]["artifact_uri"]) <= 1000
    assert len(model["info"]["artifact_uri"]) <= 1000
    assert listed.status_code == 200


# ---------------------------------------------------------------- model ids and dataset fields fit their columns


def test_a_41_character_model_id_on_a_metric_is_a_missing_model(client, token, run):
    metric = {"key": "loss", "value": 1.0, "timestamp": 1, "step": 0, "model_id": A_41_CHARACTER_MODEL_ID}

    response = post(client, token, "runs/log-batch", {"run_id": run.pk, "metrics": [metric]})

    assert response.status_code == 404
    assert error_code(response) == "RESOURCE_DOES_NOT_EXIST"
    assert not Metric.objects.filter(run=run).exists()


def test_a_41_character_model_id_on_log_metric_is_a_missing_model(client, token, run):
    body = {"run_id": run.pk, "key": "loss", "value": 1.0, "timestamp": 1, "model_id": A_41_CHARACTER_MODEL_ID}

    response = post(client, token, "runs/log-metric", body)

    assert response.status_code == 404
    assert error_code(response) == "RESOURCE_DOES_NOT_EXIST"


def test_a_41_character_model_id_as_a_run_input_is_a_missing_model(client, token, run):
    response = post(
        client, token, "runs/log-inputs", {"run_id": run.pk, "models": [{"model_id": A_41_CHARACTER_MODEL_ID}]}
    )

    assert response.status_code == 404
    assert error_code(response) == "RESOURCE_DOES_NOT_EXIST"
    assert not RunModelInput.objects.filter(run=run).exists()


def test_a_41_character_model_id_as_a_run_output_is_a_missing_model(client, token, run):
    response = post(
        client, token, "runs/outputs", {"run_id": run.pk, "models": [{"model_id": A_41_CHARACTER_MODEL_ID}]}
    )

    assert response.status_code == 404
    assert error_code(response) == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("field, limit", [("dataset_name", 500), ("dataset_digest", 36)])
def test_a_metrics_dataset_field_longer_than_its_column_is_refused(client, token, run, field, limit):
    metric = {"key": "loss", "value": 1.0, "timestamp": 1, "step": 0, field: "d" * (limit + 1)}

    response = post(client, token, "runs/log-batch", {"run_id": run.pk, "metrics": [metric]})

    assert response.status_code == 400
    assert error_code(response) == "INVALID_PARAMETER_VALUE"
    assert not Metric.objects.filter(run=run).exists()


def test_a_metrics_dataset_name_must_be_a_string(client, token, run):
    metric = {"key": "loss", "value": 1.0, "timestamp": 1, "step": 0, "dataset_name": {"a": 1}}

    response = post(client, token, "runs/log-batch", {"run_id": run.pk, "metrics": [metric]})

    assert response.status_code == 400
