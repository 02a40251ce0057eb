"""The registry flows of MLflow's tutorials, run unmodified with the real client against the portal.

Register (from log_model, from a run, from a logged model, from a classic run-artifact
model directory), version, stage, alias, then load by every `models:/` form and predict.
"""

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True, as_frame=True)


@pytest.fixture
def experiment_id(portal):
    experiment_id = portal.client().create_experiment("registry-flows")
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


# Listing the requirements spares the client its slow inference of them (a subprocess that
# imports the model); everything it sends to the portal stays the same.
REQUIREMENTS = ["scikit-learn", "numpy", "pandas"]


def train(iris, C: float) -> LogisticRegression:
    X, y = iris
    return LogisticRegression(C=C, max_iter=500).fit(X, y)


def log_and_register(classifier, name="churn"):
    with mlflow.start_run() as run:
        mlflow.log_param("C", classifier.C)
        info = mlflow.sklearn.log_model(
            classifier, name="model", registered_model_name=name, pip_requirements=REQUIREMENTS
        )
    return run, info


@pytest.fixture
def churn(portal, experiment_id, iris):
    """Two runs, each logging a model registered as churn: versions 1 and 2."""
    first, second = train(iris, 0.01), train(iris, 10.0)
    run1, info1 = log_and_register(first)
    run2, info2 = log_and_register(second)
    return {"classifiers": (first, second), "runs": (run1, run2), "infos": (info1, info2)}


def predictions_equal(loaded, classifier, X) -> bool:
    return np.array_equal(np.asarray(loaded.predict(X)), classifier.predict(X))


# ---------------------------------------------------------------- registering


def test_log_model_with_registered_model_name_creates_version_1_then_2(portal, churn):
    client = MlflowClient()
    versions = sorted(client.search_model_versions("name='churn'"), key=lambda v: int(v.version))
    assert [v.version for v in versions] == ["1", "2"]
    assert [v.run_id for v in versions] == [r.info.run_id for r in churn["runs"]]
    assert [v.source for v in versions] == [f"models:/{i.model_id}" for i in churn["infos"]]
    assert all(v.status == "READY" for v in versions)


def test_log_model_records_the_registration_on_the_logged_model(portal, churn):
    model = MlflowClient().get_logged_model(churn["infos"][1].model_id)
    assert '"version": "2"' in model.tags["mlflow.modelVersions"]


def test_register_model_from_a_runs_uri(portal, churn):
    run1 = churn["runs"][0]
    version = mlflow.register_model(f"runs:/{run1.info.run_id}/model", "churn")
    assert version.version == "3" and version.run_id == run1.info.run_id
    download = MlflowClient().get_model_version_download_uri("churn", 3)
    assert download.endswith(f"/models/{churn['infos'][0].model_id}/artifacts")


def test_register_model_from_a_logged_model_uri(portal, churn, iris):
    info = churn["infos"][0]
    version = mlflow.register_model(info.model_uri, "churn-copy")
    assert version.version == "1" and version.source == info.model_uri
    loaded = mlflow.sklearn.load_model("models:/churn-copy/1")
    assert predictions_equal(loaded, churn["classifiers"][0], iris[0])


def test_register_and_load_a_classic_run_artifact_model_directory(portal, experiment_id, iris, tmp_path):
    classifier = train(iris, 1.0)
    local = tmp_path / "saved"
    mlflow.sklearn.save_model(classifier, str(local), pip_requirements=REQUIREMENTS)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(local), "model")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "classic")
    assert version.version == "1" and version.run_id == run.info.run_id
    assert version.source.endswith(f"/{run.info.run_id}/artifacts/model")
    for uri in ("models:/classic/1", "models:/classic/latest"):
        assert predictions_equal(mlflow.pyfunc.load_model(uri), classifier, iris[0])
        assert predictions_equal(mlflow.sklearn.load_model(uri), classifier, iris[0])


def test_copy_model_version_registers_the_same_files_under_another_name(portal, churn, iris):
    client = MlflowClient()
    copy = client.copy_model_version("models:/churn/2", "churn-prod")
    assert copy.name == "churn-prod" and copy.version == "1"
    assert predictions_equal(mlflow.sklearn.load_model("models:/churn-prod/1"), churn["classifiers"][1], iris[0])


# ---------------------------------------------------------------- stages and aliases


def test_transition_archives_existing_and_get_latest_versions_follows(portal, churn):
    client = MlflowClient()
    client.transition_model_version_stage("churn", 1, "Production")
    client.transition_model_version_stage("churn", 2, "Production", archive_existing_versions=True)
    assert client.get_model_version("churn", 1).current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions("churn", stages=["Production"])] == ["2"]


def test_aliases_set_and_resolve(portal, churn):
    client = MlflowClient()
    client.set_registered_model_alias("churn", "champion", 2)
    assert client.get_model_version_by_alias("churn", "champion").version == "2"
    assert client.get_registered_model("churn").aliases == {"champion": "2"}


@pytest.mark.parametrize(
    "uri", ["models:/churn/2", "models:/churn/Production", "models:/churn/latest", "models:/churn@champion"]
)
@pytest.mark.parametrize("flavor", ["pyfunc", "sklearn"])
def test_every_models_uri_form_loads_and_predicts_like_the_original(portal, churn, iris, uri, flavor):
    client = MlflowClient()
    client.transition_model_version_stage("churn", 2, "Production", archive_existing_versions=True)
    client.set_registered_model_alias("churn", "champion", 2)
    loaded = getattr(mlflow, flavor).load_model(uri)
    assert predictions_equal(loaded, churn["classifiers"][1], iris[0])


def test_the_production_uri_follows_a_new_promotion(portal, churn, iris):
    client = MlflowClient()
    client.transition_model_version_stage("churn", 2, "Production")
    client.transition_model_version_stage("churn", 1, "Production", archive_existing_versions=True)
    loaded = mlflow.sklearn.load_model("models:/churn/Production")
    assert predictions_equal(loaded, churn["classifiers"][0], iris[0])


def test_download_artifacts_of_a_registered_version(portal, churn, tmp_path):
    from pathlib import Path

    local = mlflow.artifacts.download_artifacts("models:/churn/1", dst_path=str(tmp_path))
    assert (Path(local) / "MLmodel").is_file() and (Path(local) / "model.skops").is_file()


# ---------------------------------------------------------------- searching


def test_search_registered_models_and_versions_with_pagination(portal, churn, iris):
    client = MlflowClient()
    for name in ("alpha", "beta", "gamma"):
        client.create_registered_model(name)
    page = client.search_registered_models(max_results=2)
    assert [m.name for m in page] == ["alpha", "beta"] and page.token
    rest = client.search_registered_models(max_results=2, page_token=page.token)
    assert [m.name for m in rest] == ["churn", "gamma"] and not rest.token
    assert [m.name for m in mlflow.search_registered_models(filter_string="name LIKE 'c%'")] == ["churn"]

    versions = client.search_model_versions("name='churn'", max_results=1, order_by=["version_number ASC"])
    assert [v.version for v in versions] == ["1"] and versions.token
    more = client.search_model_versions(
        "name='churn'", max_results=1, order_by=["version_number ASC"], page_token=versions.token
    )
    assert [v.version for v in more] == ["2"]
    run2 = churn["runs"][1].info.run_id
    assert [v.version for v in mlflow.search_model_versions(filter_string=f"run_id='{run2}'")] == ["2"]
