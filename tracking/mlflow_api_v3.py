"""MLflow door, API 3.0 paths."""

from typing import Any

from django.http import HttpRequest
from django.urls import path

from portal import routes
from portal.mlflow_http import Params, mlflow_endpoint

Json = dict[str, Any]


def server_info(request: HttpRequest, params: Params) -> Json:
    """What the client asks before multipart transfers and workspace use (mlflow.utils.server_info).

    Multipart upload and presigned download are off: see tracking/mlflow_artifacts.py.
    """
    return {
        "workspaces_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "trace_archival_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
    }


urlpatterns = [
    # Public: static capability flags, the same for everyone, that the client probes with a
    # 3-second timeout and no retry. Nothing here is worth an authentication round.
    path("server-info", mlflow_endpoint({"GET": server_info}, rule=routes.PUBLIC)),
]
