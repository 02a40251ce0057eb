"""Experiments through the real mlflow client against a live portal."""

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException


def error_code(exc: MlflowException) -> str:
    return exc.error_code


def test_default_experiment_exists(portal):
    experiment = portal.client().get_experiment("0")
    assert experiment.name == "Default"
    assert experiment.lifecycle_stage == "active"


def test_create_and_get_experiment_round_trips(portal):
    client = portal.client()
    experiment_id = client.create_experiment("churn", tags={"team": "growth"})
    experiment = client.get_experiment(experiment_id)
    assert experiment.name == "churn"
    assert experiment.tags == {"team": "growth"}
    assert experiment.artifact_location == f"mlflow-artifacts:/{experiment_id}"
    assert client.get_experiment_by_name("churn").experiment_id == experiment_id


def test_duplicate_name_is_resource_already_exists(portal):
    client = portal.client()
    client.create_experiment("dup")
    with pytest.raises(MlflowException) as exc:
        client.create_experiment("dup")
    assert error_code(exc.value) == "RESOURCE_ALREADY_EXISTS"


def test_names_are_normalized_before_the_uniqueness_check(portal):
    client = portal.client()
    client.create_experiment("Ｆｒａｕｄ")  # full-width letters normalize to "Fraud"
    with pytest.raises(MlflowException) as exc:
        client.create_experiment("Fraud ")
    assert error_code(exc.value) == "RESOURCE_ALREADY_EXISTS"
    assert client.get_experiment_by_name("Fraud").name == "Fraud"


def test_empty_name_is_invalid_parameter_value(portal, alice):
    response = portal.session(alice).post(
        f"{portal.url}/api/2.0/mlflow/experiments/create", json={"name": "   "}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_missing_experiment_is_resource_does_not_exist(portal):
    client = portal.client()
    for experiment_id in ("424242", "not-a-number"):
        with pytest.raises(MlflowException) as exc:
            client.get_experiment(experiment_id)
        assert error_code(exc.value) == "RESOURCE_DOES_NOT_EXIST"
    assert portal.client().get_experiment_by_name("nope") is None


def test_rename_delete_restore(portal):
    client = portal.client()
    experiment_id = client.create_experiment("old-name")
    client.rename_experiment(experiment_id, "new-name")
    assert client.get_experiment(experiment_id).name == "new-name"
    run = client.create_run(experiment_id)
    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"


def test_default_experiment_cannot_be_deleted(portal, root):
    client = portal.client()
    portal.act_as(root)
    with pytest.raises(MlflowException) as exc:
        client.delete_experiment("0")
    assert error_code(exc.value) == "INVALID_PARAMETER_VALUE"


def test_set_and_delete_experiment_tag(portal):
    client = portal.client()
    experiment_id = client.create_experiment("tagged")
    client.set_experiment_tag(experiment_id, "stage", "dev")
    assert client.get_experiment(experiment_id).tags["stage"] == "dev"
    client.delete_experiment_tag(experiment_id, "stage")
    assert "stage" not in client.get_experiment(experiment_id).tags
    with pytest.raises(MlflowException) as exc:
        client.delete_experiment_tag(experiment_id, "stage")
    assert error_code(exc.value) == "RESOURCE_DOES_NOT_EXIST"


def test_search_experiments_filters_orders_and_pages(portal):
    client = portal.client()
    for name in ("exp-a", "exp-b", "exp-c", "other"):
        client.create_experiment(name, tags={"kind": "x" if name != "other" else "y"})
    found = client.search_experiments(filter_string="name LIKE 'exp-%'", order_by=["name DESC"])
    assert [e.name for e in found] == ["exp-c", "exp-b", "exp-a"]
    found = client.search_experiments(filter_string="tags.kind = 'y'")
    assert [e.name for e in found] == ["other"]
    page = client.search_experiments(max_results=2, order_by=["name ASC"])
    seen = [e.name for e in page]
    while page.token:
        page = client.search_experiments(max_results=2, order_by=["name ASC"], page_token=page.token)
        seen += [e.name for e in page]
    assert sorted(seen) == seen
    assert set(seen) == {"Default", "exp-a", "exp-b", "exp-c", "other"}
    assert len(seen) == len(set(seen))


def test_search_experiments_view_type(portal):
    client = portal.client()
    gone = client.create_experiment("gone")
    client.delete_experiment(gone)
    active = {e.name for e in client.search_experiments()}
    deleted = {e.name for e in client.search_experiments(view_type=mlflow.entities.ViewType.DELETED_ONLY)}
    assert "gone" not in active and deleted == {"gone"}


def test_bad_search_filter_is_invalid_parameter_value(portal):
    with pytest.raises(MlflowException) as exc:
        portal.client().search_experiments(filter_string="name === 'x'")
    assert error_code(exc.value) == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "location",
    [
        "file:///etc",
        "/tmp/elsewhere",
        "s3://bucket/x",
        "http://evil.example/x",
        "mlflow-artifacts://evil.example/x",
        "mlflow-artifacts:/../../etc",
        "mlflow-artifacts:/a/%2e%2e/b",
        "mlflow-artifacts:/a/%252e%252e/b",
        "mlflow-artifacts:/a\\..\\b",
        "mlflow-artifacts:/a;/../b",
        "mlflow-artifacts:/a#/../b",
    ],
)
def test_hostile_artifact_locations_are_rejected(portal, location):
    with pytest.raises(MlflowException) as exc:
        portal.client().create_experiment(f"loc-{abs(hash(location))}", artifact_location=location)
    assert error_code(exc.value) == "INVALID_PARAMETER_VALUE"


def test_artifact_location_inside_the_store_is_accepted(portal):
    client = portal.client()
    experiment_id = client.create_experiment("custom-loc", artifact_location="mlflow-artifacts:/team-a/custom")
    assert client.get_experiment(experiment_id).artifact_location == "mlflow-artifacts:/team-a/custom"
    run = client.create_run(experiment_id)
    assert run.info.artifact_uri == f"mlflow-artifacts:/team-a/custom/{run.info.run_id}/artifacts"


def test_other_users_can_read_but_not_change_an_experiment(portal, bob):
    client = portal.client()
    experiment_id = client.create_experiment("alices")
    portal.act_as(bob)
    assert client.get_experiment(experiment_id).name == "alices"
    for change in (
        lambda: client.rename_experiment(experiment_id, "bobs"),
        lambda: client.delete_experiment(experiment_id),
        lambda: client.set_experiment_tag(experiment_id, "k", "v"),
        lambda: client.create_run(experiment_id),
    ):
        with pytest.raises(MlflowException) as exc:
            change()
        assert error_code(exc.value) == "PERMISSION_DENIED"


def test_unauthenticated_call_gets_401_with_www_authenticate(portal):
    response = requests.get(f"{portal.url}/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_basic_auth_works_with_the_client(portal, alice):
    portal.act_as(alice, basic=True)
    experiment_id = portal.client().create_experiment("via-basic")
    assert portal.client().get_experiment(experiment_id).name == "via-basic"


def test_wrong_password_is_unauthenticated(portal, monkeypatch):
    portal.act_as(None)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    with pytest.raises(MlflowException) as exc:
        portal.client().get_experiment("0")
    assert error_code(exc.value) == "UNAUTHENTICATED"


def test_unknown_endpoint_is_a_clear_mlflow_error(portal, alice):
    response = portal.session(alice).get(f"{portal.url}/api/2.0/mlflow/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_malformed_json_body_is_invalid_parameter_value(portal, alice):
    response = portal.session(alice).post(
        f"{portal.url}/api/2.0/mlflow/experiments/create",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_non_json_body_is_refused(portal, alice):
    # A cross-site form can send text/plain without a CORS preflight; the API must not accept it.
    response = portal.session(alice).post(
        f"{portal.url}/api/2.0/mlflow/experiments/create",
        data='{"name": "csrf"}',
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "location",
    [
        "mlflow-artifacts:/1",
        "mlflow-artifacts:/42/custom",
        "mlflow-artifacts:/team/0123456789abcdef0123456789abcdef/artifacts",
        "mlflow-artifacts:/team/models/m-0123456789abcdef0123456789abcdef/artifacts",
    ],
)
def test_locations_that_look_like_portal_folders_are_rejected(portal, location):
    with pytest.raises(MlflowException) as exc:
        portal.client().create_experiment(f"reserved-{abs(hash(location))}", artifact_location=location)
    assert error_code(exc.value) == "INVALID_PARAMETER_VALUE"
