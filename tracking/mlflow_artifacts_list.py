"""MLflow door: GET /api/2.0/mlflow/artifacts/list (the tracking API's view of a run's artifacts).

Unlike the artifact proxy's listing, paths here are relative to the run's artifact root.
Everything comes in one page; a page_token is accepted and ignored.
"""

from typing import Any

from django.http import HttpRequest
from django.urls import path

from portal.mlflow_http import Params, mlflow_endpoint
from tracking import selectors
from tracking.services import artifacts as artifact_services

Json = dict[str, Any]


def list_run_artifacts(request: HttpRequest, params: Params) -> Json:
    run = selectors.run_get_for_user(request.user, params.run_id())
    entries = artifact_services.run_artifacts_list(user=request.user, run=run, path=params.str("path"))
    result: Json = {"root_uri": run.artifact_uri}
    if entries:
        result["files"] = [
            {"path": e.path, "is_dir": e.is_dir, **({"file_size": e.file_size} if e.file_size is not None else {})}
            for e in entries
        ]
    return result


urlpatterns = [
    path("artifacts/list", mlflow_endpoint({"GET": list_run_artifacts})),
]
