"""Registered model names follow experiments' name rule: twins that only look different
(full-width, zero-width, trailing space) cannot be registered next to the original."""

import json

import pytest

from portal.errors import AlreadyExists, InvalidParameter, NotFound
from portal.services import api_token_create
from registry import selectors, services
from registry.models import RegisteredModel
from tests.portal.helpers import bearer
from tracking.services import experiments as experiment_services

TWINS_THAT_NORMALIZE_TO_CHURN = ["churn ", " churn", "ｃｈｕｒｎ", "churn\u3000"]
TWINS_WITH_FORMAT_CHARACTERS = ["ch\u200burn", "churn\u200d", "\ufeffchurn", "ch\u00adurn"]


@pytest.mark.parametrize("twin", TWINS_THAT_NORMALIZE_TO_CHURN)
def test_a_twin_of_an_existing_name_already_exists(alice, churn, twin):
    with pytest.raises(AlreadyExists):
        services.registered_model_create(actor=alice, name=twin)

    assert RegisteredModel.objects.count() == 1


@pytest.mark.parametrize("twin", TWINS_WITH_FORMAT_CHARACTERS)
def test_a_name_with_format_characters_is_invalid(alice, churn, twin):
    with pytest.raises(InvalidParameter):
        services.registered_model_create(actor=alice, name=twin)

    assert RegisteredModel.objects.count() == 1


@pytest.mark.parametrize("twin", TWINS_THAT_NORMALIZE_TO_CHURN + TWINS_WITH_FORMAT_CHARACTERS)
def test_experiments_and_registered_models_judge_a_twin_the_same_way(alice, churn, twin):
    experiment_services.experiment_create(actor=alice, name="churn")

    with pytest.raises(Exception) as for_experiment:
        experiment_services.experiment_create(actor=alice, name=twin)
    with pytest.raises(Exception) as for_model:
        services.registered_model_create(actor=alice, name=twin)

    assert type(for_experiment.value) is type(for_model.value)
    assert type(for_model.value) in (AlreadyExists, InvalidParameter)


def test_a_new_name_is_stored_normalized(alice):
    model = services.registered_model_create(actor=alice, name="  ｆｒａｕｄ  ")

    assert model.name == "fraud"


def test_a_full_width_solidus_is_refused_like_a_slash(alice):
    with pytest.raises(InvalidParameter):
        services.registered_model_create(actor=alice, name="a／b")


@pytest.mark.parametrize("twin", TWINS_THAT_NORMALIZE_TO_CHURN)
def test_renaming_onto_a_twin_of_an_existing_name_already_exists(alice, churn, twin):
    services.registered_model_create(actor=alice, name="fraud")

    with pytest.raises(AlreadyExists):
        services.registered_model_rename(actor=alice, name="fraud", new_name=twin)


@pytest.mark.parametrize("twin", TWINS_WITH_FORMAT_CHARACTERS)
def test_renaming_to_a_name_with_format_characters_is_invalid(alice, churn, twin):
    with pytest.raises(InvalidParameter):
        services.registered_model_rename(actor=alice, name="churn", new_name=twin)

    assert RegisteredModel.objects.get().name == "churn"


@pytest.mark.parametrize("spelling", TWINS_THAT_NORMALIZE_TO_CHURN)
def test_a_lookup_by_name_normalizes_as_experiments_get_by_name_does(alice, churn, spelling):
    assert selectors.registered_model_get_for_user(alice, spelling).pk == churn.pk


def test_a_lookup_with_a_format_character_finds_nothing(alice, churn):
    with pytest.raises(NotFound):
        selectors.registered_model_get_for_user(alice, "ch\u200burn")


@pytest.mark.parametrize(
    "twin, code",
    [
        ("churn ", "RESOURCE_ALREADY_EXISTS"),
        ("ｃｈｕｒｎ", "RESOURCE_ALREADY_EXISTS"),
        ("ch\u200burn", "INVALID_PARAMETER_VALUE"),
    ],
)
def test_registering_a_twin_through_the_mlflow_api_is_refused(client, alice, churn, twin, code):
    token = api_token_create(user=alice, name="tests").raw

    response = client.post(
        "/api/2.0/mlflow/registered-models/create",
        data=json.dumps({"name": twin}),
        content_type="application/json",
        **bearer(token),
    )

    assert response.status_code == 400
    assert response.json()["error_code"] == code


def test_getting_a_model_by_a_full_width_spelling_through_the_mlflow_api_finds_it(client, alice, churn):
    token = api_token_create(user=alice, name="tests").raw

    response = client.get("/api/2.0/mlflow/registered-models/get", {"name": "ｃｈｕｒｎ"}, **bearer(token))

    assert response.status_code == 200
    assert response.json()["registered_model"]["name"] == "churn"
