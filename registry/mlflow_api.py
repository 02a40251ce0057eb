"""MLflow door for the model registry (/api/2.0/mlflow/registered-models/..., model-versions/...).

Each handler parses parameters, calls one service or selector, and returns MLflow's JSON.
See portal/mlflow_http.py for the plumbing. Paths and methods are those of the client's
ModelRegistryService (mlflow/protos/model_registry.proto); DELETE requests carry JSON bodies.
"""

from typing import Any

from django.http import HttpRequest
from django.urls import path

from portal.errors import PermissionDenied
from portal.mlflow_http import Params, mlflow_endpoint, page_json
from registry import mlflow_json, notifications, selectors, services

Json = dict[str, Any]


def _model_response(model) -> Json:
    return {"registered_model": mlflow_json.registered_model_json(selectors.registered_model_data_load([model])[0])}


def _version_response(version) -> Json:
    return {"model_version": mlflow_json.model_version_json(selectors.model_version_data_load([version])[0])}


def _require_applied(outcome: services.Outcome) -> None:
    """A change to a protected target opened a request (committed already) instead of
    changing anything: MLflow has no "accepted" answer, so PERMISSION_DENIED says so, and
    names the request and its page, so a script's author knows what happened and where to go."""
    if outcome.applied:
        return
    request = outcome.request
    model = request.registered_model.name
    opened = "Opened" if outcome.request_created else "There already is"
    raise PermissionDenied(
        f"{request.target_label[0].upper()}{request.target_label[1:]} of registered model '{model}' is protected: "
        f"the change needs approval. {opened} transition request {request.pk} for version "
        f"{request.version_number} (state: {request.state}): {notifications.request_page_url(request)}"
    )


# ---------------------------------------------------------------- registered models


def create_registered_model(request: HttpRequest, params: Params) -> Json:
    model = services.registered_model_create(
        actor=request.user,
        name=params.str("name"),
        description=params.str("description"),
        tags=params.objects("tags"),
    )
    return _model_response(model)


def get_registered_model(request: HttpRequest, params: Params) -> Json:
    return _model_response(selectors.registered_model_get_for_user(request.user, params.str("name", required=True)))


def rename_registered_model(request: HttpRequest, params: Params) -> Json:
    model = services.registered_model_rename(
        actor=request.user, name=params.str("name", required=True), new_name=params.str("new_name")
    )
    return _model_response(model)


def update_registered_model(request: HttpRequest, params: Params) -> Json:
    model = services.registered_model_update(
        actor=request.user, name=params.str("name", required=True), description=params.str("description")
    )
    return _model_response(model)


def delete_registered_model(request: HttpRequest, params: Params) -> Json:
    services.registered_model_delete(actor=request.user, name=params.str("name", required=True))
    return {}


def search_registered_models(request: HttpRequest, params: Params) -> Json:
    page = selectors.registered_model_search_for_user(
        request.user,
        filter_string=params.str("filter"),
        order_by=params.str_list("order_by"),
        max_results=params.int("max_results"),
        page_token=params.str("page_token"),
    )
    models = [mlflow_json.registered_model_json(d) for d in page.models]
    return page_json("registered_models", models, page.next_page_token)


def get_latest_versions(request: HttpRequest, params: Params) -> Json:
    versions = selectors.latest_versions_for_user(
        request.user, params.str("name", required=True), params.str_list("stages")
    )
    return {"model_versions": [mlflow_json.model_version_json(d) for d in selectors.model_version_data_load(versions)]}


def set_registered_model_tag(request: HttpRequest, params: Params) -> Json:
    services.registered_model_tag_set(
        actor=request.user,
        name=params.str("name", required=True),
        key=params.str("key", required=True),
        value=params.str("value", default=""),
    )
    return {}


def delete_registered_model_tag(request: HttpRequest, params: Params) -> Json:
    services.registered_model_tag_delete(
        actor=request.user, name=params.str("name", required=True), key=params.str("key", required=True)
    )
    return {}


# ---------------------------------------------------------------- aliases


def set_alias(request: HttpRequest, params: Params) -> Json:
    outcome = services.alias_set(
        actor=request.user,
        name=params.str("name", required=True),
        alias=params.str("alias", required=True),
        version=params.str("version", required=True),
    )
    _require_applied(outcome)
    return {}


def get_version_by_alias(request: HttpRequest, params: Params) -> Json:
    version = selectors.model_version_get_by_alias_for_user(
        request.user, params.str("name", required=True), params.str("alias", required=True)
    )
    return _version_response(version)


def delete_alias(request: HttpRequest, params: Params) -> Json:
    outcome = services.alias_delete(
        actor=request.user, name=params.str("name", required=True), alias=params.str("alias", required=True)
    )
    _require_applied(outcome)
    return {}


# ---------------------------------------------------------------- versions


def create_model_version(request: HttpRequest, params: Params) -> Json:
    version = services.model_version_create(
        actor=request.user,
        name=params.str("name", required=True),
        source=params.str("source", required=True),
        run_id=params.str("run_id"),
        model_id=params.str("model_id"),
        tags=params.objects("tags"),
        description=params.str("description"),
        run_link=params.str("run_link"),
    )
    return _version_response(version)


def get_model_version(request: HttpRequest, params: Params) -> Json:
    version = selectors.model_version_get_for_user(
        request.user, params.str("name", required=True), params.str("version", required=True)
    )
    return _version_response(version)


def update_model_version(request: HttpRequest, params: Params) -> Json:
    version = services.model_version_update(
        actor=request.user,
        name=params.str("name", required=True),
        version=params.str("version", required=True),
        description=params.str("description"),
    )
    return _version_response(version)


def delete_model_version(request: HttpRequest, params: Params) -> Json:
    services.model_version_delete(
        actor=request.user, name=params.str("name", required=True), version=params.str("version", required=True)
    )
    return {}


def search_model_versions(request: HttpRequest, params: Params) -> Json:
    page = selectors.model_version_search_for_user(
        request.user,
        filter_string=params.str("filter"),
        order_by=params.str_list("order_by"),
        max_results=params.int("max_results"),
        page_token=params.str("page_token"),
    )
    return page_json("model_versions", [mlflow_json.model_version_json(d) for d in page.versions], page.next_page_token)


def transition_stage(request: HttpRequest, params: Params) -> Json:
    outcome = services.model_version_transition_stage(
        actor=request.user,
        name=params.str("name", required=True),
        version=params.str("version", required=True),
        stage=params.str("stage", required=True),
        archive_existing_versions=params.bool("archive_existing_versions"),
    )
    _require_applied(outcome)
    return _version_response(outcome.version)


def get_download_uri(request: HttpRequest, params: Params) -> Json:
    uri = selectors.model_version_download_uri_for_user(
        request.user, params.str("name", required=True), params.str("version", required=True)
    )
    return {"artifact_uri": uri}


def set_model_version_tag(request: HttpRequest, params: Params) -> Json:
    services.model_version_tag_set(
        actor=request.user,
        name=params.str("name", required=True),
        version=params.str("version", required=True),
        key=params.str("key", required=True),
        value=params.str("value", default=""),
    )
    return {}


def delete_model_version_tag(request: HttpRequest, params: Params) -> Json:
    services.model_version_tag_delete(
        actor=request.user,
        name=params.str("name", required=True),
        version=params.str("version", required=True),
        key=params.str("key", required=True),
    )
    return {}


urlpatterns = [
    path("registered-models/create", mlflow_endpoint({"POST": create_registered_model})),
    path("registered-models/get", mlflow_endpoint({"GET": get_registered_model})),
    path("registered-models/rename", mlflow_endpoint({"POST": rename_registered_model})),
    path("registered-models/update", mlflow_endpoint({"PATCH": update_registered_model})),
    path("registered-models/delete", mlflow_endpoint({"DELETE": delete_registered_model})),
    path("registered-models/search", mlflow_endpoint({"GET": search_registered_models})),
    path("registered-models/set-tag", mlflow_endpoint({"POST": set_registered_model_tag})),
    path("registered-models/delete-tag", mlflow_endpoint({"DELETE": delete_registered_model_tag})),
    path(
        "registered-models/get-latest-versions",
        mlflow_endpoint({"POST": get_latest_versions, "GET": get_latest_versions}),
    ),
    path(
        "registered-models/alias",
        mlflow_endpoint({"POST": set_alias, "GET": get_version_by_alias, "DELETE": delete_alias}),
    ),
    path("model-versions/create", mlflow_endpoint({"POST": create_model_version})),
    path("model-versions/get", mlflow_endpoint({"GET": get_model_version})),
    path("model-versions/update", mlflow_endpoint({"PATCH": update_model_version})),
    path("model-versions/delete", mlflow_endpoint({"DELETE": delete_model_version})),
    path("model-versions/search", mlflow_endpoint({"GET": search_model_versions})),
    path("model-versions/transition-stage", mlflow_endpoint({"POST": transition_stage})),
    path("model-versions/get-download-uri", mlflow_endpoint({"GET": get_download_uri})),
    path("model-versions/set-tag", mlflow_endpoint({"POST": set_model_version_tag})),
    path("model-versions/delete-tag", mlflow_endpoint({"DELETE": delete_model_version_tag})),
]
