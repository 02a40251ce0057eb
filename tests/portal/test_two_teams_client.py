"""The issue's "done when", through the unmodified mlflow client against a live portal: two
users in different teams see only their own and shared experiments, runs, artifacts and
models; a team grant on a registered model lets the other team load it."""

import mlflow
import pytest
from mlflow.exceptions import MlflowException, RestException

from portal import permissions
from portal import services as portal_services


@pytest.fixture
def teams(root, alice, bob):
    red = portal_services.team_create(actor=root, name="red")
    blue = portal_services.team_create(actor=root, name="blue")
    portal_services.team_member_add(actor=root, team_id=red.pk, username="alice")
    portal_services.team_member_add(actor=root, team_id=blue.pk, username="bob")
    return red, blue


def _work(client, name, tmp_path):
    """As a data scientist would: an experiment, a run with a param, a metric and a file."""
    experiment_id = client.create_experiment(name)
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "alpha", "0.5")
    client.log_metric(run.info.run_id, "rmse", 0.7)
    note = tmp_path / f"{name}.txt"
    note.write_text(name)
    client.log_artifact(run.info.run_id, str(note))
    client.set_terminated(run.info.run_id)
    return experiment_id, run.info.run_id


def test_two_teams_see_only_their_own_and_shared_work_on_every_door(
    portal, client_as, settings, alice, bob, root, teams, tmp_path
):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"
    red, blue = teams
    alice_client = client_as(alice)
    alice_exp, alice_run = _work(alice_client, "red-only", tmp_path)
    shared_exp, shared_run = _work(alice_client, "shared", tmp_path)
    alice_client.create_registered_model("red-model")
    permissions.grant_create(
        actor=alice, root=permissions.resource_get(alice, "experiment", shared_exp), level="READ", team=blue
    )
    bob_client = client_as(bob)
    bob_exp, bob_run = _work(bob_client, "blue-only", tmp_path)
    bob_client.create_registered_model("blue-model")

    # bob: searches, gets and artifacts
    names = {e.name for e in bob_client.search_experiments()}
    assert names == {"Default", "blue-only", "shared"}
    runs = bob_client.search_runs([alice_exp, shared_exp, bob_exp])
    assert {r.info.run_id for r in runs} == {shared_run, bob_run}
    assert bob_client.get_run(shared_run).data.params == {"alpha": "0.5"}
    assert [f.path for f in bob_client.list_artifacts(shared_run)] == ["shared.txt"]
    downloaded = bob_client.download_artifacts(shared_run, "shared.txt", str(tmp_path / "dl"))
    assert open(downloaded).read() == "shared"
    with pytest.raises(MlflowException) as hidden:
        bob_client.get_run(alice_run)
    assert hidden.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException):
        bob_client.list_artifacts(alice_run)
    with pytest.raises(MlflowException) as denied:
        bob_client.log_metric(shared_run, "sneaky", 1.0)
    assert denied.value.error_code == "PERMISSION_DENIED"
    assert {m.name for m in bob_client.search_registered_models()} == {"blue-model"}
    with pytest.raises(MlflowException) as missing:
        bob_client.get_registered_model("red-model")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    # alice: the same from the other side
    alice_client = client_as(alice)
    assert {e.name for e in alice_client.search_experiments()} == {"Default", "red-only", "shared"}
    assert {r.info.run_id for r in alice_client.search_runs([alice_exp, shared_exp, bob_exp])} == {
        alice_run,
        shared_run,
    }
    assert {m.name for m in alice_client.search_registered_models()} == {"red-model"}

    # the superuser sees everything
    root_client = client_as(root)
    assert {e.name for e in root_client.search_experiments()} >= {"red-only", "shared", "blue-only"}
    assert len(root_client.search_runs([alice_exp, shared_exp, bob_exp])) == 3


def test_a_team_reads_a_registered_model_and_loads_it_without_the_experiment(
    portal, client_as, settings, alice, bob, teams, tmp_path
):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"
    red, blue = teams
    client_as(alice)
    mlflow.set_experiment("red-secret")
    with mlflow.start_run() as run:
        mlflow.pyfunc.log_model(name="model", python_model=_Constant(), registered_model_name="scorer")
    alice_client = client_as(alice)
    alice_client.set_registered_model_alias("scorer", "champion", 1)
    model = permissions.resource_get(alice, "registered_model", "scorer")
    permissions.grant_create(actor=alice, root=model, level="READ", team=blue)

    client_as(bob)
    for uri in ("models:/scorer/1", "models:/scorer@champion", "models:/scorer/latest"):
        loaded = mlflow.pyfunc.load_model(uri)
        assert list(loaded.predict([1, 2])) == [42, 42]
    with pytest.raises((MlflowException, RestException)):
        mlflow.get_run(run.info.run_id)

    # revoking the team's grant takes effect on the next request
    permissions.grant_revoke(actor=alice, root=model, team=blue)
    with pytest.raises(MlflowException):
        mlflow.pyfunc.load_model("models:/scorer/1")


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [42 for _ in model_input]
