"""MLflow 3 logged models through the real mlflow client against the live portal (as alice)."""

import mlflow
import numpy as np
import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

API = "/api/2.0/mlflow/logged-models"


def code(exc_info) -> str:
    return exc_info.value.error_code


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture
def experiment_id(portal):
    experiment_id = portal.client().create_experiment("logged-models")
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@pytest.fixture
def logged(portal, experiment_id, iris):
    """A LogisticRegression logged with log_model inside a run that logged a param and metrics.

    pip_requirements only spares the client its requirements inference (a subprocess that
    takes seconds); the calls to the server are the same as without it.
    """
    X, y = iris
    classifier = LogisticRegression(max_iter=500).fit(X, y)
    with mlflow.start_run() as run:
        mlflow.log_param("max_iter", 500)
        mlflow.log_metrics({"accuracy": classifier.score(X, y), "loss": 0.25})
        info = mlflow.sklearn.log_model(classifier, name="model", pip_requirements=["scikit-learn"])
    return classifier, run, info


@pytest.fixture
def bare_model(portal, experiment_id):
    return portal.client().create_logged_model(experiment_id=experiment_id, name="bare")


# ---------------------------------------------------------------- log_model and loading


def test_log_model_creates_a_ready_model_linked_to_its_run(portal, logged):
    _, run, info = logged
    model = portal.client().get_logged_model(info.model_id)
    assert model.status == LoggedModelStatus.READY
    assert model.name == "model" and model.source_run_id == run.info.run_id
    assert model.params == {"max_iter": "500"}
    assert model.artifact_location.endswith(f"/models/{info.model_id}/artifacts")
    outputs = portal.client().get_run(run.info.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [info.model_id]


def test_log_model_links_the_runs_metrics_to_the_model(portal, logged):
    _, run, info = logged
    model = portal.client().get_logged_model(info.model_id)
    assert {m.key for m in model.metrics} == {"accuracy", "loss"}
    assert all(m.run_id == run.info.run_id and m.model_id == info.model_id for m in model.metrics)


def test_log_model_does_not_grow_the_runs_metric_history(portal, logged):
    _, run, _ = logged
    assert len(portal.client().get_metric_history(run.info.run_id, "accuracy")) == 1


def test_a_logged_sklearn_model_loads_back_with_the_same_predictions(portal, experiment_id, iris):
    X, y = iris
    classifier = LogisticRegression(max_iter=500).fit(X, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(classifier, name="model")
    loaded = mlflow.sklearn.load_model(info.model_uri)
    assert np.array_equal(loaded.predict(X), classifier.predict(X))


def test_a_logged_model_loads_as_pyfunc(logged, iris):
    classifier, _, info = logged
    X, _ = iris
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert np.array_equal(np.asarray(loaded.predict(X)), classifier.predict(X))


def test_a_logged_model_loads_from_its_runs_uri(logged, iris):
    classifier, run, _ = logged
    X, _ = iris
    loaded = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert np.array_equal(loaded.predict(X), classifier.predict(X))


def test_listing_a_runs_model_directory_works(portal, logged):
    _, run, _ = logged
    files = {f.path for f in portal.client().list_artifacts(run.info.run_id, "model")}
    assert "model/MLmodel" in files


def test_autolog_records_params_metrics_and_a_model(portal, experiment_id, iris):
    X, y = iris
    mlflow.sklearn.autolog()
    try:
        with mlflow.start_run() as run:
            LogisticRegression(max_iter=300).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = portal.client().get_run(run.info.run_id)
    assert got.data.params["max_iter"] == "300"
    assert "training_accuracy_score" in got.data.metrics
    models = portal.client().search_logged_models(
        experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    assert len(models) == 1 and models[0].status == LoggedModelStatus.READY
    loaded = mlflow.sklearn.load_model(f"models:/{models[0].model_id}")
    assert loaded.predict(X.head(5)).shape == (5,)


# ---------------------------------------------------------------- the client's API


def test_create_and_get_a_model_with_params_tags_and_a_type(portal, experiment_id):
    client = portal.client()
    created = client.create_logged_model(
        experiment_id=experiment_id, name="agent", params={"p": "1"}, tags={"t": "v"}, model_type="Agent"
    )
    got = client.get_logged_model(created.model_id)
    assert got.status == LoggedModelStatus.PENDING
    assert (got.name, got.model_type, got.params, got.tags) == ("agent", "Agent", {"p": "1"}, {"t": "v"})
    assert got.experiment_id == experiment_id and got.creation_timestamp > 0


def test_more_than_a_hundred_params_arrive_in_batches(portal, experiment_id):
    params = {f"p{i}": str(i) for i in range(150)}
    created = portal.client().create_logged_model(experiment_id=experiment_id, name="wide", params=params)
    assert portal.client().get_logged_model(created.model_id).params == params


def test_finalize_a_model(portal, bare_model):
    client = portal.client()
    assert client.finalize_logged_model(bare_model.model_id, LoggedModelStatus.READY).status == LoggedModelStatus.READY
    assert client.get_logged_model(bare_model.model_id).status == LoggedModelStatus.READY


def test_set_and_delete_model_tags(portal, bare_model):
    client = portal.client()
    client.set_logged_model_tags(bare_model.model_id, {"a": "1", "b": "2"})
    client.set_logged_model_tags(bare_model.model_id, {"a": "3"})
    client.delete_logged_model_tag(bare_model.model_id, "b")
    assert client.get_logged_model(bare_model.model_id).tags == {"a": "3"}


def test_deleting_a_missing_tag_is_resource_does_not_exist(portal, bare_model):
    with pytest.raises(MlflowException) as exc:
        portal.client().delete_logged_model_tag(bare_model.model_id, "nope")
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_a_missing_model_is_resource_does_not_exist(portal):
    with pytest.raises(MlflowException) as exc:
        portal.client().get_logged_model("m-" + "0" * 32)
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_a_deleted_model_is_gone_unless_deleted_ones_are_asked_for(portal, alice, experiment_id, bare_model):
    client = portal.client()
    client.delete_logged_model(bare_model.model_id)
    with pytest.raises(MlflowException) as exc:
        client.get_logged_model(bare_model.model_id)
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"
    response = portal.session(alice).get(f"{portal.url}{API}/{bare_model.model_id}?allow_deleted=true")
    assert response.status_code == 200 and response.json()["model"]["info"]["model_id"] == bare_model.model_id
    assert client.search_logged_models(experiment_ids=[experiment_id]).to_list() == []


def test_search_finds_models_by_name(portal, experiment_id):
    client = portal.client()
    wanted = client.create_logged_model(experiment_id=experiment_id, name="model")
    client.create_logged_model(experiment_id=experiment_id, name="other")
    found = client.search_logged_models(experiment_ids=[experiment_id], filter_string="name = 'model'")
    assert [m.model_id for m in found] == [wanted.model_id]


def test_search_filters_on_tags_params_and_attributes(portal, experiment_id):
    client = portal.client()
    a = client.create_logged_model(experiment_id=experiment_id, name="a", params={"lr": "0.1"}, tags={"team": "x"})
    b = client.create_logged_model(experiment_id=experiment_id, name="b", params={"lr": "0.2"}, tags={"team": "y"})
    client.finalize_logged_model(b.model_id, LoggedModelStatus.READY)

    def ids(filter_string):
        found = client.search_logged_models(experiment_ids=[experiment_id], filter_string=filter_string)
        return {m.model_id for m in found}

    assert ids("tags.team = 'x'") == {a.model_id}
    assert ids("params.lr != '0.1'") == {b.model_id}
    assert ids("status = 'LOGGED_MODEL_READY'") == {b.model_id}
    assert ids("name LIKE '%' AND tags.`team` ILIKE 'Y'") == {b.model_id}
    assert ids(f"creation_timestamp >= {a.creation_timestamp}") == {a.model_id, b.model_id}


def test_search_filters_and_orders_on_metrics(portal, experiment_id):
    client = portal.client()
    run = client.create_run(experiment_id)
    models = [client.create_logged_model(experiment_id=experiment_id, name=f"m{i}") for i in range(3)]
    for i, model in enumerate(models):
        client.log_metric(run.info.run_id, "acc", 0.5 + i / 10, model_id=model.model_id)
    found = client.search_logged_models(
        experiment_ids=[experiment_id],
        filter_string="metrics.acc > 0.55",
        order_by=[{"field_name": "metrics.acc", "ascending": False}],
    )
    assert [m.name for m in found] == ["m2", "m1"]


def test_search_pages_through_results_newest_first(portal, experiment_id):
    client = portal.client()
    created = [client.create_logged_model(experiment_id=experiment_id, name=f"n{i}").model_id for i in range(5)]
    first = client.search_logged_models(experiment_ids=[experiment_id], max_results=2)
    assert first.token
    seen = list(first)
    token = first.token
    while token:
        page = client.search_logged_models(experiment_ids=[experiment_id], max_results=2, page_token=token)
        seen += list(page)
        token = page.token
    assert sorted(m.model_id for m in seen) == sorted(created)
    times = [m.creation_timestamp for m in seen]
    assert times == sorted(times, reverse=True)


def test_search_orders_by_an_attribute(portal, experiment_id):
    client = portal.client()
    for name in ("b", "c", "a"):
        client.create_logged_model(experiment_id=experiment_id, name=name)
    found = client.search_logged_models(experiment_ids=[experiment_id], order_by=[{"field_name": "name"}])
    assert [m.name for m in found] == ["a", "b", "c"]


def test_an_invalid_filter_is_invalid_parameter_value(portal, experiment_id):
    with pytest.raises(MlflowException) as exc:
        portal.client().search_logged_models(experiment_ids=[experiment_id], filter_string="name = = 'x'")
    assert code(exc) == "INVALID_PARAMETER_VALUE"


def test_an_unknown_filter_attribute_is_invalid_parameter_value(portal, experiment_id):
    with pytest.raises(MlflowException) as exc:
        portal.client().search_logged_models(experiment_ids=[experiment_id], filter_string="colour = 'red'")
    assert code(exc) == "INVALID_PARAMETER_VALUE"


# ---------------------------------------------------------------- other users


def test_charlie_can_read_but_not_change_alices_model(portal, client_as, charlie, bare_model):
    client = client_as(charlie)
    assert client.get_logged_model(bare_model.model_id).name == "bare"
    with pytest.raises(MlflowException) as exc:
        client.finalize_logged_model(bare_model.model_id, LoggedModelStatus.READY)
    assert code(exc) == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as exc:
        client.set_logged_model_tags(bare_model.model_id, {"a": "b"})
    assert code(exc) == "PERMISSION_DENIED"


def test_charlie_cannot_create_a_model_in_alices_experiment(portal, client_as, charlie, experiment_id):
    with pytest.raises(MlflowException) as exc:
        client_as(charlie).create_logged_model(experiment_id=experiment_id, name="intruder")
    assert code(exc) == "PERMISSION_DENIED"


# ---------------------------------------------------------------- files through the logged-model routes


def test_a_models_files_list_and_download_through_its_own_routes(portal, alice, logged):
    _, _, info = logged
    session = portal.session(alice)
    listing = session.get(f"{portal.url}{API}/{info.model_id}/artifacts/directories").json()
    assert listing["root_uri"].endswith(f"/models/{info.model_id}/artifacts")
    assert "MLmodel" in {f["path"] for f in listing["files"]}
    response = session.get(
        f"{portal.url}{API}/{info.model_id}/artifacts/files", params={"artifact_file_path": "MLmodel"}
    )
    assert response.status_code == 200 and b"flavors" in response.content


def test_a_missing_model_file_is_404(portal, alice, bare_model):
    response = portal.session(alice).get(
        f"{portal.url}{API}/{bare_model.model_id}/artifacts/files", params={"artifact_file_path": "nope"}
    )
    assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_model_file_path_cannot_climb_out_of_the_model(portal, alice, bare_model):
    response = portal.session(alice).get(
        f"{portal.url}{API}/{bare_model.model_id}/artifacts/files", params={"artifact_file_path": "../../x"}
    )
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_requests_without_credentials_get_401(portal, bare_model):
    response = portal.session().get(f"{portal.url}{API}/{bare_model.model_id}")
    assert response.status_code == 401
