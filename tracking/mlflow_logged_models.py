"""MLflow door: MLflow 3 logged models (/api/2.0/mlflow/logged-models...).

Paths and methods are those of the client's protobuf service (CreateLoggedModel,
GetLoggedModel, FinalizeLoggedModel, DeleteLoggedModel, SearchLoggedModels,
SetLoggedModelTags, DeleteLoggedModelTag, LogLoggedModelParamsRequest,
ListLoggedModelArtifacts) plus the UI's file download. The client itself moves a model's
files through the artifact proxy (tracking/mlflow_artifacts.py); the two file routes here
go through the same artifact service, so access and path checks are the same.
"""

from typing import Any

from django.http import FileResponse, HttpRequest
from django.urls import path

from portal.errors import InvalidParameter
from portal.mlflow_http import Params, mlflow_endpoint, page_json
from tracking import mlflow_json, selectors
from tracking.mlflow_artifacts import artifact_file_response
from tracking.services import artifacts as artifact_services
from tracking.services import logged_models as logged_model_services

Json = dict[str, Any]


def _model_response(model) -> Json:
    return {"model": mlflow_json.logged_model_json(selectors.logged_model_data_load([model])[0])}


def create_logged_model(request: HttpRequest, params: Params) -> Json:
    model = logged_model_services.logged_model_create(
        actor=request.user,
        experiment_id=params.str("experiment_id", required=True),
        name=params.str("name"),
        source_run_id=params.str("source_run_id"),
        params=params.objects("params"),
        tags=params.objects("tags"),
        model_type=params.str("model_type"),
    )
    return _model_response(model)


def get_logged_model(request: HttpRequest, params: Params, model_id: str) -> Json:
    model = selectors.logged_model_get_for_user(request.user, model_id, allow_deleted=params.bool("allow_deleted"))
    return _model_response(model)


def finalize_logged_model(request: HttpRequest, params: Params, model_id: str) -> Json:
    status = params.data.get("status")
    if status is None or status == "":
        raise InvalidParameter("Missing value for required parameter 'status'.")
    model = logged_model_services.logged_model_finalize(actor=request.user, model_id=model_id, status=status)
    return _model_response(model)


def delete_logged_model(request: HttpRequest, params: Params, model_id: str) -> Json:
    logged_model_services.logged_model_delete(actor=request.user, model_id=model_id)
    return {}


def search_logged_models(request: HttpRequest, params: Params) -> Json:
    page = selectors.logged_model_search_for_user(
        request.user,
        experiment_ids=[str(e) for e in params.list("experiment_ids")],
        filter_string=params.str("filter"),
        datasets=params.objects("datasets"),
        order_by=params.objects("order_by"),
        max_results=params.int("max_results"),
        page_token=params.str("page_token"),
    )
    return page_json("models", [mlflow_json.logged_model_json(data) for data in page.models], page.next_page_token)


def set_logged_model_tags(request: HttpRequest, params: Params, model_id: str) -> Json:
    model = logged_model_services.logged_model_tags_set(
        actor=request.user, model_id=model_id, tags=params.objects("tags")
    )
    return _model_response(model)


def delete_logged_model_tag(request: HttpRequest, params: Params, model_id: str, tag_key: str) -> Json:
    logged_model_services.logged_model_tag_delete(actor=request.user, model_id=model_id, key=tag_key)
    return {}


def log_logged_model_params(request: HttpRequest, params: Params, model_id: str) -> Json:
    logged_model_services.logged_model_params_log(
        actor=request.user, model_id=model_id, params=params.objects("params")
    )
    return {}


def list_logged_model_artifacts(request: HttpRequest, params: Params, model_id: str) -> Json:
    """ListLoggedModelArtifacts: one directory of the model's files, paths relative to its root."""
    model = selectors.logged_model_get_for_user(request.user, model_id, allow_deleted=True)
    directory = artifact_services.artifact_path_clean(params.str("artifact_directory_path") or "")
    entries = artifact_services.artifact_list(
        user=request.user, path=logged_model_services.logged_model_artifact_path(model, directory)
    )
    result: Json = {"root_uri": model.artifact_location}
    if entries:
        result["files"] = [
            {
                "path": f"{directory}/{e.path}" if directory else e.path,
                "is_dir": e.is_dir,
                **({"file_size": e.file_size} if e.file_size is not None else {}),
            }
            for e in entries
        ]
    return result


def get_logged_model_artifact(request: HttpRequest, params: Params, model_id: str) -> FileResponse:
    """One of the model's files (the MLflow UI asks for them this way), streamed."""
    model = selectors.logged_model_get_for_user(request.user, model_id, allow_deleted=True)
    relative = artifact_services.artifact_path_clean(params.str("artifact_file_path", required=True))
    artifact = artifact_services.artifact_open(
        user=request.user, path=logged_model_services.logged_model_artifact_path(model, relative)
    )
    return artifact_file_response(artifact)


urlpatterns = [
    path("logged-models", mlflow_endpoint({"POST": create_logged_model})),
    # Before <model_id>, which would otherwise take "search" for an id.
    path("logged-models/search", mlflow_endpoint({"POST": search_logged_models})),
    path(
        "logged-models/<str:model_id>",
        mlflow_endpoint({"GET": get_logged_model, "PATCH": finalize_logged_model, "DELETE": delete_logged_model}),
    ),
    path("logged-models/<str:model_id>/tags", mlflow_endpoint({"PATCH": set_logged_model_tags})),
    # Tag keys may contain slashes; the client puts the key in the path as it is.
    path("logged-models/<str:model_id>/tags/<path:tag_key>", mlflow_endpoint({"DELETE": delete_logged_model_tag})),
    path("logged-models/<str:model_id>/params", mlflow_endpoint({"POST": log_logged_model_params})),
    path("logged-models/<str:model_id>/artifacts/directories", mlflow_endpoint({"GET": list_logged_model_artifacts})),
    path("logged-models/<str:model_id>/artifacts/files", mlflow_endpoint({"GET": get_logged_model_artifact})),
]
