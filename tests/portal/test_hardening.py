"""Holes found by an attack on the portal: tokens as web sessions, and the MLflow door's
request parsing (content type, JSON that cannot be stored, oversized bodies)."""

import json

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import Client, RequestFactory

from portal.middleware import ApiAuthenticationMiddleware
from portal.models import ApiToken
from portal.services import api_token_create
from registry.models import ModelVersion, RegisteredModel, RegisteredModelTag
from registry.services import registered_model_create
from tests.factories import make_experiment, make_run
from tests.portal.helpers import basic, bearer, fresh_password
from tracking.models import Dataset, Experiment, ExperimentTag, Param, Run, RunTag

TOKENS_URL = "/accounts/tokens/"
CREATE_EXPERIMENT = "/api/2.0/mlflow/experiments/create"


@pytest.fixture
def token(alice):
    return api_token_create(user=alice, name="laptop").raw


@pytest.fixture
def root_token(root):
    return api_token_create(user=root, name="ci").raw


def post_json(client, path, body, token, method="POST"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.generic(method, path, data=data, content_type="application/json", **bearer(token))


def assert_invalid(response):
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


# ---------------------------------------------------------------- tokens open the API doors only


def test_a_token_does_not_open_the_token_page(client, token):
    response = client.get(TOKENS_URL, **bearer(token))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_token_cannot_mint_another_token(client, alice, token):
    response = client.post(TOKENS_URL, {"name": "minted"}, **bearer(token))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not ApiToken.objects.filter(user=alice, name="minted").exists()


def test_basic_credentials_do_not_open_the_token_page(client, alice):
    password = fresh_password(alice)

    got = client.get(TOKENS_URL, **basic("alice", password))
    posted = client.post(TOKENS_URL, {"name": "minted"}, **basic("alice", password))

    assert got.status_code == 302 and posted.status_code == 302
    assert not ApiToken.objects.filter(user=alice, name="minted").exists()


def test_a_superusers_token_gets_only_the_admin_login(client, root_token):
    response = client.get("/admin/", **bearer(root_token))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_superuser_basic_credentials_get_only_the_admin_login(client, root):
    password = fresh_password(root)

    response = client.get("/admin/auth/user/", **basic("root", password))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_session_still_opens_the_token_page(client, alice):
    client.force_login(alice)

    response = client.get(TOKENS_URL)

    assert response.status_code == 200


def test_a_page_ignores_a_bad_authorization_header_next_to_a_session(client, alice):
    client.force_login(alice)

    response = client.get(TOKENS_URL, HTTP_AUTHORIZATION="Bearer not-a-token")

    assert response.status_code == 200


def test_a_token_still_works_on_the_mlflow_api(client, token, api_url):
    response = client.get(api_url, **bearer(token))

    assert response.status_code == 200


def test_the_mlflow_api_still_ignores_a_session(client, alice, api_url):
    client.force_login(alice)

    response = client.get(api_url)

    assert response.status_code == 401


def test_on_the_native_api_the_middleware_neither_sets_nor_resets_the_user(alice, bob):
    """DRF authenticates /api/v1/ itself (header or session), once."""
    seen = {}

    def view(request):
        seen["user"] = request.user
        return HttpResponse("ok")

    middleware = ApiAuthenticationMiddleware(view)
    with_header = RequestFactory().get("/api/v1/experiments", **bearer(api_token_create(user=bob, name="t").raw))
    with_header.user = alice
    without_header = RequestFactory().get("/api/v1/experiments")
    without_header.user = alice

    middleware(with_header)
    assert seen["user"] == alice
    middleware(without_header)
    assert seen["user"] == alice


def test_on_the_native_api_a_bad_header_is_left_to_drf(db):
    request = RequestFactory().get("/api/v1/experiments", HTTP_AUTHORIZATION="Bearer not-a-token")
    request.user = AnonymousUser()

    response = ApiAuthenticationMiddleware(lambda r: HttpResponse("ok"))(request)

    assert response.status_code == 200


# ---------------------------------------------------------------- JSON bodies need Content-Type: application/json


class NoContentTypeClient(Client):
    """A test client that sends no Content-Type header at all (the stock one always sends one)."""

    def request(self, **request):
        request.pop("CONTENT_TYPE", None)
        return super().request(**request)


def test_a_json_body_without_a_content_type_is_refused(alice, token):
    body = json.dumps({"name": "no-content-type"})

    response = NoContentTypeClient().generic("POST", CREATE_EXPERIMENT, data=body, **bearer(token))

    assert "CONTENT_TYPE" not in response.wsgi_request.META
    assert_invalid(response)
    assert not Experiment.objects.filter(name="no-content-type").exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_json_body_with_another_content_type_is_refused(client, alice, token, content_type):
    body = json.dumps({"name": "cross-site"})

    response = client.generic("POST", CREATE_EXPERIMENT, data=body, content_type=content_type, **bearer(token))

    assert_invalid(response)
    assert not Experiment.objects.filter(name="cross-site").exists()


def test_a_json_content_type_with_a_charset_is_accepted(client, alice, token):
    body = json.dumps({"name": "with-charset"})

    response = client.generic(
        "POST", CREATE_EXPERIMENT, data=body, content_type="application/json; charset=utf-8", **bearer(token)
    )

    assert response.status_code == 200
    assert Experiment.objects.filter(name="with-charset").exists()


# ---------------------------------------------------------------- JSON the portal cannot store


LONE = "\ud800"  # json.dumps writes it as the escape "\\ud800", as the attack sent it

WRITES_WITH_A_LONE_SURROGATE = [
    ("experiments/create", lambda ids: {"name": LONE}),
    ("experiments/update", lambda ids: {"experiment_id": ids["experiment"], "new_name": LONE}),
    ("experiments/set-experiment-tag", lambda ids: {"experiment_id": ids["experiment"], "key": "k", "value": LONE}),
    ("runs/create", lambda ids: {"experiment_id": ids["experiment"], "run_name": LONE}),
    ("runs/set-tag", lambda ids: {"run_id": ids["run"], "key": "k", "value": LONE}),
    ("runs/log-parameter", lambda ids: {"run_id": ids["run"], "key": "k", "value": LONE}),
    ("runs/log-batch", lambda ids: {"run_id": ids["run"], "params": [{"key": LONE, "value": "v"}]}),
    ("runs/log-batch", lambda ids: {"run_id": ids["run"], "tags": [{"key": "k", "value": LONE}]}),
    (
        "runs/log-inputs",
        lambda ids: {
            "run_id": ids["run"],
            "datasets": [{"dataset": {"name": LONE, "digest": "d", "source_type": "local", "source": "s"}}],
        },
    ),
    ("registered-models/create", lambda ids: {"name": LONE}),
    ("PATCH registered-models/update", lambda ids: {"name": "churn", "description": LONE}),
    ("registered-models/set-tag", lambda ids: {"name": "churn", "key": "k", "value": LONE}),
    (
        "model-versions/create",
        lambda ids: {"name": "churn", "source": f"runs:/{ids['run']}/model", "description": LONE},
    ),
]


@pytest.fixture
def written(alice):
    """An experiment, a run and a registered model (churn) of alice's, to write to."""
    experiment = make_experiment(owner=alice, name="targets")
    run = make_run(owner=alice, experiment=experiment)
    registered_model_create(actor=alice, name="churn")
    return {"experiment": str(experiment.pk), "run": run.pk}


def stored_rows() -> int:
    models = (Experiment, ExperimentTag, Run, RunTag, Param, Dataset, RegisteredModel, RegisteredModelTag, ModelVersion)
    return sum(model.objects.count() for model in models)


@pytest.mark.parametrize("endpoint, body", WRITES_WITH_A_LONE_SURROGATE)
def test_a_lone_surrogate_in_a_string_is_refused_on_every_write(client, token, written, endpoint, body):
    before = stored_rows()

    method, _, path = endpoint.rpartition(" ")
    response = post_json(client, f"/api/2.0/mlflow/{path}", body(written), token, method or "POST")

    assert "\\ud800" in response.wsgi_request.body.decode()
    assert_invalid(response)
    assert stored_rows() == before


def test_a_lone_surrogate_in_a_json_key_is_refused(client, alice, token):
    response = post_json(client, CREATE_EXPERIMENT, '{"name": "x", "\\ud800": 1}', token)

    assert_invalid(response)
    assert not Experiment.objects.filter(name="x").exists()


def test_a_surrogate_pair_is_a_character_and_is_accepted(client, alice, token):
    response = post_json(client, CREATE_EXPERIMENT, '{"name": "smile \\ud83d\\ude00"}', token)

    assert response.status_code == 200
    assert Experiment.objects.filter(name="smile \U0001f600").exists()


def test_a_surrogate_encoded_in_raw_utf8_bytes_is_refused(client, alice, token):
    response = post_json(client, CREATE_EXPERIMENT, b'{"name": "\xed\xa0\x80"}', token)

    assert_invalid(response)


def test_a_percent_encoded_surrogate_in_a_query_string_is_not_a_server_error(client, alice, token):
    response = client.get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=%ED%A0%80", **bearer(token))

    assert response.status_code in (400, 404)


@pytest.mark.parametrize("body", ["[" * 100_000, '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"])
def test_json_nested_100000_deep_is_refused(client, alice, token, body):
    response = post_json(client, CREATE_EXPERIMENT, body, token)

    assert_invalid(response)


def test_json_nested_as_deep_as_the_parser_allows_is_not_a_server_error(client, alice, token):
    for depth in (500, 900, 990):
        body = '{"name": ' + "[" * depth + "]" * depth + "}"

        response = post_json(client, CREATE_EXPERIMENT, body, token)

        assert response.status_code == 400, (depth, response.content)


def test_a_body_over_the_upload_limit_gets_413_in_mlflow_json(client, alice, token, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = post_json(client, CREATE_EXPERIMENT, {"name": "big", "tags": [{"key": "k", "value": "v" * 2000}]}, token)

    assert response.status_code == 413
    assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert not Experiment.objects.filter(name="big").exists()


def test_an_artifact_upload_is_not_held_to_the_upload_limit(client, alice, token, settings, default_experiment):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    run = post_json(client, "/api/2.0/mlflow/runs/create", {"experiment_id": "0"}, token).json()["run"]
    path = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")

    response = client.put(
        f"/api/2.0/mlflow-artifacts/artifacts/{path}/big.bin",
        data=b"x" * 5000,
        content_type="application/octet-stream",
        **bearer(token),
    )

    assert response.status_code == 200, response.content


def test_an_empty_post_without_a_json_content_type_is_refused(alice, token, default_experiment):
    """A no-cors fetch or a field-less form posts an empty body; runs/create needs no parameter."""
    response = NoContentTypeClient().generic("POST", "/api/2.0/mlflow/runs/create", data=b"", **bearer(token))

    assert "CONTENT_TYPE" not in response.wsgi_request.META
    assert_invalid(response)
    assert not Run.objects.exists()


def test_an_empty_post_with_a_form_content_type_is_refused(client, alice, token, default_experiment):
    response = client.generic(
        "POST", "/api/2.0/mlflow/runs/create", data=b"", content_type="text/plain", **bearer(token)
    )

    assert_invalid(response)
    assert not Run.objects.exists()
