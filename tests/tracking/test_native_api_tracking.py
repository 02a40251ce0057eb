"""The native API's read-only tracking resources: experiments, runs and logged models.

Lists and details go through the selectors: what a user may not read is missing from
every page and a 404 on its own."""

import pytest

from portal import permissions
from tests.factories import make_experiment, make_run
from tests.native_api import V1, all_pages, signed_in
from tracking.services import experiments as experiment_services
from tracking.services import logged_models as logged_model_services
from tracking.services import runs as run_services


@pytest.fixture
def private_by_default(settings):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"


@pytest.fixture
def experiment(alice):
    return make_experiment(owner=alice, name="churn-training", tags={"team": "ml"})


@pytest.fixture
def hidden(charlie, private_by_default):
    """charlie's experiment, which alice may not read."""
    return make_experiment(owner=charlie, name="charlies-secret")


def test_anonymous_callers_get_401(client, experiment):
    assert client.get(V1 + "experiments/").status_code == 401
    assert client.get(V1 + f"experiments/{experiment.pk}/").status_code == 401


def test_an_experiment_is_shown_with_its_tags(client, alice, bob, experiment):
    response = signed_in(client, bob).get(V1 + f"experiments/{experiment.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "churn-training"
    assert body["owner"] == "alice"
    assert body["tags"] == {"team": "ml"}
    assert body["lifecycle_stage"] == "active"
    assert body["private"] is False


def test_a_hidden_experiment_is_404_like_a_missing_one(client, alice, hidden):
    signed_in(client, alice)

    assert client.get(V1 + f"experiments/{hidden.pk}/").status_code == 404
    assert client.get(V1 + "experiments/987654/").status_code == 404


def test_a_superuser_sees_every_experiment(client, root, hidden):
    assert signed_in(client, root).get(V1 + f"experiments/{hidden.pk}/").status_code == 200


def test_experiment_pages_never_show_hidden_rows(client, alice, charlie, private_by_default):
    mine = {make_experiment(owner=alice, name=f"alice-{i}").pk for i in range(4)}
    theirs = {make_experiment(owner=charlie, name=f"charlie-{i}").pk for i in range(4)}

    ids = [e["id"] for e in all_pages(signed_in(client, alice), V1 + "experiments/?page_size=2")]

    assert len(ids) == len(set(ids))
    assert mine <= set(ids)
    assert not theirs & set(ids)


def test_a_granted_experiment_joins_the_pages(client, alice, charlie, root, private_by_default):
    from tracking.models import Experiment

    theirs = [make_experiment(owner=charlie, name=f"charlie-{i}") for i in range(5)]
    permissions.grant_create(actor=root, root=theirs[3], level="READ", user=alice)

    ids = [e["id"] for e in all_pages(signed_in(client, alice), V1 + "experiments/?page_size=1")]

    assert theirs[3].pk in ids
    assert not {e.pk for e in theirs if e != theirs[3]} & set(ids)
    assert set(ids) <= set(Experiment.objects.values_list("pk", flat=True))


def test_deleted_experiments_are_listed_on_request(client, alice, experiment):
    experiment_services.experiment_delete(actor=alice, experiment_id=str(experiment.pk))
    signed_in(client, alice)

    assert experiment.pk not in [e["id"] for e in client.get(V1 + "experiments/").json()["results"]]
    deleted = client.get(V1 + "experiments/?view_type=DELETED_ONLY").json()["results"]
    assert [e["id"] for e in deleted] == [experiment.pk]


def test_an_unknown_view_type_is_400(client, alice):
    assert signed_in(client, alice).get(V1 + "experiments/?view_type=SOME").status_code == 400


# ---------------------------------------------------------------- runs


def test_runs_are_filtered_by_experiment(client, alice, experiment):
    other = make_experiment(owner=alice, name="other")
    run = make_run(owner=alice, experiment=experiment)
    make_run(owner=alice, experiment=other)

    results = signed_in(client, alice).get(V1 + f"runs/?experiment={experiment.pk}").json()["results"]

    assert [r["id"] for r in results] == [run.pk]
    assert results[0]["experiment"] == experiment.pk
    assert "params" not in results[0]


def test_a_malformed_experiment_filter_is_400(client, alice):
    assert signed_in(client, alice).get(V1 + "runs/?experiment=abc").status_code == 400


def test_a_run_shows_its_params_tags_and_latest_metrics(client, alice, experiment):
    run = make_run(owner=alice, experiment=experiment, name="baseline")
    run_services.run_log_batch(
        actor=alice,
        run_id=run.pk,
        params=[{"key": "lr", "value": "0.1"}],
        tags=[{"key": "stage", "value": "dev"}],
        metrics=[
            {"key": "loss", "value": 0.5, "timestamp": 1, "step": 0},
            {"key": "loss", "value": 0.25, "timestamp": 2, "step": 1},
            {"key": "nan", "value": float("nan"), "timestamp": 1, "step": 0},
        ],
    )

    body = signed_in(client, alice).get(V1 + f"runs/{run.pk}/").json()

    assert body["name"] == "baseline"
    assert body["params"] == {"lr": "0.1"}
    assert body["tags"]["stage"] == "dev"
    assert body["metrics"] == [
        {"key": "loss", "value": 0.25, "timestamp": 2, "step": 1},
        {"key": "nan", "value": "NaN", "timestamp": 1, "step": 0},
    ]


def test_run_pages_never_show_hidden_runs(client, alice, charlie, experiment, hidden):
    mine = {make_run(owner=alice, experiment=experiment).pk for _ in range(5)}
    theirs = {make_run(owner=charlie, experiment=hidden).pk for _ in range(5)}

    ids = [r["id"] for r in all_pages(signed_in(client, alice), V1 + "runs/?page_size=2")]

    assert len(ids) == len(set(ids))
    assert set(ids) == mine
    assert not theirs & set(ids)


def test_a_hidden_run_is_404(client, alice, charlie, hidden):
    run = make_run(owner=charlie, experiment=hidden)

    assert signed_in(client, alice).get(V1 + f"runs/{run.pk}/").status_code == 404


def test_a_runs_hidden_experiment_filter_is_an_empty_list(client, alice, charlie, hidden):
    make_run(owner=charlie, experiment=hidden)

    response = signed_in(client, alice).get(V1 + f"runs/?experiment={hidden.pk}")

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_a_deleted_run_is_still_found_by_id(client, alice, experiment):
    run = make_run(owner=alice, experiment=experiment)
    run_services.run_delete(actor=alice, run_id=run.pk)

    response = signed_in(client, alice).get(V1 + f"runs/{run.pk}/")

    assert response.status_code == 200
    assert response.json()["lifecycle_stage"] == "deleted"


# ---------------------------------------------------------------- logged models


def _logged_model(user, experiment, name="model"):
    return logged_model_services.logged_model_create(actor=user, experiment_id=str(experiment.pk), name=name)


def test_logged_models_are_listed_and_found(client, alice, experiment):
    model = _logged_model(alice, experiment)
    signed_in(client, alice)

    listed = client.get(V1 + f"logged-models/?experiment={experiment.pk}").json()["results"]
    found = client.get(V1 + f"logged-models/{model.pk}/")

    assert [m["id"] for m in listed] == [model.pk]
    assert found.status_code == 200
    assert found.json()["experiment"] == experiment.pk


def test_a_hidden_logged_model_is_404_and_never_listed(client, alice, charlie, hidden):
    model = _logged_model(charlie, hidden)
    signed_in(client, alice)

    assert client.get(V1 + f"logged-models/{model.pk}/").status_code == 404
    assert client.get(V1 + "logged-models/").json()["results"] == []
