"""Registered models, versions, stages, aliases and tags through the real mlflow client."""

import pytest
import requests
from mlflow.exceptions import MlflowException

from registry.models import StageTransition
from tests.registry.conftest import upload
from tracking import selectors as tracking_selectors


def code(exc_info) -> str:
    return exc_info.value.error_code


@pytest.fixture
def client(portal):
    return portal.client()


@pytest.fixture
def run_id(client, alice):
    """A run holding a (placeholder) model directory, registered by its runs:/ URI below."""
    experiment_id = client.create_experiment("registry-api")
    run = client.create_run(experiment_id)
    upload(alice, tracking_selectors.run_get_for_user(alice, run.info.run_id), "model/MLmodel")
    return run.info.run_id


@pytest.fixture
def churn(client, run_id):
    """churn with versions 1, 2, 3."""
    client.create_registered_model("churn", tags={"team": "growth"}, description="Predicts churn.")
    for _ in range(3):
        client.create_model_version("churn", f"runs:/{run_id}/model", run_id=run_id)
    return "churn"


# ---------------------------------------------------------------- registered models


def test_create_and_get_a_registered_model(client):
    created = client.create_registered_model("churn", tags={"team": "growth"}, description="# Churn")
    got = client.get_registered_model("churn")
    assert created.name == got.name == "churn"
    assert got.tags == {"team": "growth"} and got.description == "# Churn"
    assert got.creation_timestamp > 0 and got.last_updated_timestamp >= got.creation_timestamp
    assert got.latest_versions == [] and got.aliases == {}


def test_a_duplicate_name_is_resource_already_exists(client):
    client.create_registered_model("churn")
    with pytest.raises(MlflowException) as exc:
        client.create_registered_model("churn")
    assert code(exc) == "RESOURCE_ALREADY_EXISTS"


def test_a_missing_model_is_resource_does_not_exist(client):
    with pytest.raises(MlflowException) as exc:
        client.get_registered_model("missing")
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as exc:
        client.delete_registered_model("missing")
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_an_invalid_name_is_invalid_parameter_value(portal, alice):
    # The client checks some names itself; send one it lets through to show the server checks too.
    response = portal.session(alice).post(
        f"{portal.url}/api/2.0/mlflow/registered-models/create", json={"name": "a/../b"}
    )
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_rename_moves_versions_and_aliases_to_the_new_name(client, churn):
    client.set_registered_model_alias("churn", "champion", 2)
    client.rename_registered_model("churn", "attrition")
    assert client.get_registered_model("attrition").name == "attrition"
    assert client.get_model_version("attrition", 3).name == "attrition"
    assert client.get_model_version_by_alias("attrition", "champion").version == "2"
    with pytest.raises(MlflowException) as exc:
        client.get_registered_model("churn")
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_rename_to_a_taken_name_is_resource_already_exists(client, churn):
    client.create_registered_model("other")
    with pytest.raises(MlflowException) as exc:
        client.rename_registered_model("churn", "other")
    assert code(exc) == "RESOURCE_ALREADY_EXISTS"


def test_update_description(client, churn):
    updated = client.update_registered_model("churn", description="**new**")
    assert updated.description == "**new**" == client.get_registered_model("churn").description


def test_delete_removes_the_model_and_its_versions(client, churn):
    client.delete_registered_model("churn")
    with pytest.raises(MlflowException) as exc:
        client.get_model_version("churn", 1)
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_registered_model_tags_set_and_delete(client, churn):
    client.set_registered_model_tag("churn", "owner", "alice")
    client.delete_registered_model_tag("churn", "team")
    assert client.get_registered_model("churn").tags == {"owner": "alice"}


def test_get_registered_model_shows_latest_versions_and_aliases(client, churn):
    client.transition_model_version_stage("churn", 1, "Production")
    client.set_registered_model_alias("churn", "champion", 1)
    model = client.get_registered_model("churn")
    assert sorted((v.current_stage, v.version) for v in model.latest_versions) == [("None", "3"), ("Production", "1")]
    assert model.aliases == {"champion": "1"}


# ---------------------------------------------------------------- versions


def test_create_and_get_a_version(client, run_id):
    client.create_registered_model("churn")
    created = client.create_model_version(
        "churn", f"runs:/{run_id}/model", run_id=run_id, tags={"k": "v"}, description="first"
    )
    got = client.get_model_version("churn", "1")
    assert created.version == got.version == "1"
    assert got.source == f"runs:/{run_id}/model" and got.run_id == run_id
    assert got.status == "READY" and got.current_stage == "None"
    assert got.tags == {"k": "v"} and got.description == "first" and got.user_id == "alice"


def test_a_missing_version_is_resource_does_not_exist(client, churn):
    with pytest.raises(MlflowException) as exc:
        client.get_model_version("churn", 42)
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_a_malformed_version_is_invalid_parameter_value(portal, churn, alice):
    response = portal.session(alice).get(
        f"{portal.url}/api/2.0/mlflow/model-versions/get", params={"name": "churn", "version": "abc"}
    )
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_update_and_delete_a_version(client, churn):
    assert client.update_model_version("churn", 2, description="better").description == "better"
    client.delete_model_version("churn", 2)
    with pytest.raises(MlflowException) as exc:
        client.get_model_version("churn", 2)
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"
    assert [v.version for v in client.search_model_versions("name='churn'", order_by=["version_number"])] == ["1", "3"]


def test_version_tags_set_and_delete(client, churn):
    client.set_model_version_tag("churn", 1, "validated", "true")
    client.set_model_version_tag("churn", 1, "gone", "x")
    client.delete_model_version_tag("churn", 1, "gone")
    assert client.get_model_version("churn", 1).tags == {"validated": "true"}


def test_transition_with_archive_existing_versions(client, churn):
    client.transition_model_version_stage("churn", 1, "Production")
    moved = client.transition_model_version_stage("churn", 2, "Production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert client.get_model_version("churn", 1).current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions("churn", stages=["Production"])] == ["2"]
    assert StageTransition.objects.filter(version_number=1, to_stage="Archived").count() == 1


def test_get_latest_versions_per_stage(client, churn):
    client.transition_model_version_stage("churn", 1, "Staging")
    client.transition_model_version_stage("churn", 2, "Production")
    latest = {v.current_stage: v.version for v in client.get_latest_versions("churn")}
    assert latest == {"None": "3", "Staging": "1", "Production": "2"}
    assert [v.version for v in client.get_latest_versions("churn", stages=["staging"])] == ["1"]


def test_an_unknown_stage_is_invalid_parameter_value(portal, churn, alice):
    response = portal.session(alice).post(
        f"{portal.url}/api/2.0/mlflow/model-versions/transition-stage",
        json={"name": "churn", "version": "1", "stage": "Prod", "archive_existing_versions": False},
    )
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_archive_existing_with_archived_is_invalid_parameter_value(client, churn):
    with pytest.raises(MlflowException) as exc:
        client.transition_model_version_stage("churn", 1, "Archived", archive_existing_versions=True)
    assert code(exc) == "INVALID_PARAMETER_VALUE"


def test_download_uri_is_the_portals_artifact_location(client, churn, run_id):
    uri = client.get_model_version_download_uri("churn", 1)
    assert uri.startswith("mlflow-artifacts:/") and uri.endswith(f"/{run_id}/artifacts/model")


# ---------------------------------------------------------------- aliases


def test_set_get_and_delete_an_alias(client, churn):
    client.set_registered_model_alias("churn", "champion", 2)
    version = client.get_model_version_by_alias("churn", "champion")
    assert version.version == "2" and version.aliases == ["champion"]
    client.set_registered_model_alias("churn", "champion", 3)
    assert client.get_model_version_by_alias("churn", "champion").version == "3"
    client.delete_registered_model_alias("churn", "champion")
    with pytest.raises(MlflowException) as exc:
        client.get_model_version_by_alias("churn", "champion")
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_a_reserved_alias_is_invalid_parameter_value(portal, churn, alice):
    response = portal.session(alice).post(
        f"{portal.url}/api/2.0/mlflow/registered-models/alias", json={"name": "churn", "alias": "v1", "version": "1"}
    )
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_an_alias_to_a_missing_version_is_resource_does_not_exist(client, churn):
    with pytest.raises(MlflowException) as exc:
        client.set_registered_model_alias("churn", "champion", 99)
    assert code(exc) == "RESOURCE_DOES_NOT_EXIST"


# ---------------------------------------------------------------- sources


@pytest.mark.parametrize(
    "source",
    [
        "/tmp/model",
        "file:///etc",
        "http://example.com/model",
        "s3://bucket/model",
        "runs:/{run_id}/../../etc",
        "runs:/{run_id}/model%2f%2e%2e%2f%2e%2e",
        "runs:/{run_id}/%252e%252e/x",
        "mlflow-artifacts:/1/{run_id}/artifacts/..\\..\\x",
    ],
)
def test_sources_outside_the_store_are_invalid_parameter_value(client, churn, run_id, source):
    with pytest.raises(MlflowException) as exc:
        client.create_model_version("churn", source.format(run_id=run_id), run_id=run_id)
    assert code(exc) == "INVALID_PARAMETER_VALUE"
    assert [v.version for v in client.search_model_versions("name='churn'")] == ["3", "2", "1"]


def test_a_logged_model_source_without_model_id_is_invalid_parameter_value(client, churn):
    with pytest.raises(MlflowException) as exc:
        client.create_model_version("churn", "models:/m-" + "a" * 32)
    assert code(exc) == "INVALID_PARAMETER_VALUE"


def test_a_source_outside_the_given_run_is_invalid_parameter_value(client, churn, run_id):
    other = client.create_run(client.get_run(run_id).info.experiment_id).info.run_id
    with pytest.raises(MlflowException) as exc:
        client.create_model_version("churn", f"runs:/{run_id}/model", run_id=other)
    assert code(exc) == "INVALID_PARAMETER_VALUE"


# ---------------------------------------------------------------- access


def test_charlie_gets_permission_denied_on_writes_to_alices_model(portal, client_as, churn, run_id, charlie, alice):
    as_charlie = client_as(charlie)
    assert as_charlie.get_registered_model("churn").name == "churn"  # reads are open to signed-in users
    writes = [
        lambda: as_charlie.update_registered_model("churn", description="mine"),
        lambda: as_charlie.rename_registered_model("churn", "mine"),
        lambda: as_charlie.set_registered_model_tag("churn", "k", "v"),
        lambda: as_charlie.delete_registered_model_tag("churn", "team"),
        lambda: as_charlie.create_model_version("churn", f"runs:/{run_id}/model", run_id=run_id),
        lambda: as_charlie.update_model_version("churn", 1, description="mine"),
        lambda: as_charlie.set_model_version_tag("churn", 1, "k", "v"),
        lambda: as_charlie.transition_model_version_stage("churn", 1, "Production"),
        lambda: as_charlie.set_registered_model_alias("churn", "mine", 1),
        lambda: as_charlie.delete_registered_model_alias("churn", "mine"),
        lambda: as_charlie.delete_model_version("churn", 1),
        lambda: as_charlie.delete_registered_model("churn"),
    ]
    for write in writes:
        with pytest.raises(MlflowException) as exc:
            write()
        assert code(exc) == "PERMISSION_DENIED"
    as_alice = client_as(alice)
    assert as_alice.get_model_version("churn", 1).current_stage == "None"
    assert len(as_alice.search_model_versions("name='churn'")) == 3


def test_anonymous_requests_are_refused(portal, churn):
    response = requests.get(f"{portal.url}/api/2.0/mlflow/registered-models/get", params={"name": "churn"})
    assert response.status_code == 401


def test_an_unsupported_method_is_a_clear_mlflow_error(portal, alice):
    response = portal.session(alice).put(f"{portal.url}/api/2.0/mlflow/registered-models/create", json={})
    assert response.status_code == 405 and response.json()["error_code"] == "ENDPOINT_NOT_FOUND"

