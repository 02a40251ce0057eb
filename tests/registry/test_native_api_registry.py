"""The native API's read-only registry: registered models by name, model versions by
name and number. What a user may not read is never listed and a 404 on its own."""

import pytest

from registry import services
from tests.factories import make_experiment, make_run
from tests.native_api import V1, all_pages, signed_in
from tests.registry.conftest import make_version, upload


@pytest.fixture
def private_by_default(settings):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"


@pytest.fixture
def secret(charlie, private_by_default):
    """charlie's registered model with one version, which alice may not read."""
    experiment = make_experiment(owner=charlie, name="charlies")
    run = make_run(owner=charlie, experiment=experiment)
    upload(charlie, run, "model/MLmodel")
    services.registered_model_create(actor=charlie, name="secret")
    make_version(charlie, "secret", run)
    return "secret"


def test_anonymous_callers_get_401(client, churn):
    assert client.get(V1 + "registered-models/churn/").status_code == 401
    assert client.get(V1 + "model-versions/").status_code == 401


def test_a_registered_model_is_found_by_name_with_its_tags_and_aliases(client, alice, bob, churn, versions):
    services.alias_set(actor=alice, name="churn", alias="champion", version=2)

    response = signed_in(client, bob).get(V1 + "registered-models/churn/")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "churn"
    assert body["owner"] == "alice"
    assert body["aliases"] == {"champion": 2}


def test_a_name_with_spaces_and_dots_is_found(client, alice):
    services.registered_model_create(actor=alice, name="fraud model v1.2")

    response = signed_in(client, alice).get(V1 + "registered-models/fraud%20model%20v1.2/")

    assert response.status_code == 200
    assert response.json()["name"] == "fraud model v1.2"


def test_a_hidden_registered_model_is_404_like_a_missing_one(client, alice, secret):
    signed_in(client, alice)

    assert client.get(V1 + "registered-models/secret/").status_code == 404
    assert client.get(V1 + "registered-models/missing/").status_code == 404


def test_model_pages_never_show_hidden_models(client, alice, charlie, secret):
    mine = {services.registered_model_create(actor=alice, name=f"alice-{i}").name for i in range(3)}
    theirs = {services.registered_model_create(actor=charlie, name=f"charlie-{i}").name for i in range(3)} | {secret}

    names = [m["name"] for m in all_pages(signed_in(client, alice), V1 + "registered-models/?page_size=2")]

    assert names == sorted(mine)
    assert not theirs & set(names)


def test_a_superuser_sees_a_hidden_model(client, root, secret):
    assert signed_in(client, root).get(V1 + "registered-models/secret/").status_code == 200


# ---------------------------------------------------------------- versions


def test_a_version_is_found_by_model_name_and_number(client, alice, model_dir_run, versions):
    response = signed_in(client, alice).get(V1 + "model-versions/churn/2/")

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["version"]) == ("churn", 2)
    assert body["run"] == model_dir_run.pk
    assert body["current_stage"] == "None"
    assert "storage_location" not in body


def test_a_missing_version_is_404(client, alice, versions):
    assert signed_in(client, alice).get(V1 + "model-versions/churn/9/").status_code == 404


def test_a_hidden_version_is_404(client, alice, secret):
    assert signed_in(client, alice).get(V1 + "model-versions/secret/1/").status_code == 404


def test_versions_are_filtered_by_model(client, alice, versions, model_dir_run):
    services.registered_model_create(actor=alice, name="other")
    make_version(alice, "other", model_dir_run)

    results = signed_in(client, alice).get(V1 + "model-versions/?model=churn").json()["results"]

    assert [(v["name"], v["version"]) for v in results] == [("churn", 1), ("churn", 2), ("churn", 3)]


def test_filtering_by_a_hidden_model_is_an_empty_list(client, alice, secret):
    response = signed_in(client, alice).get(V1 + "model-versions/?model=secret")

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_version_pages_never_show_hidden_versions(client, alice, versions, secret):
    listed = all_pages(signed_in(client, alice), V1 + "model-versions/?page_size=1")

    assert [(v["name"], v["version"]) for v in listed] == [("churn", 1), ("churn", 2), ("churn", 3)]
