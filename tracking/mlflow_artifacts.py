"""MLflow door: the artifact proxy (/api/2.0/mlflow-artifacts/...).

File bodies are raw bytes, not JSON, so the file route's handlers take the request as it
is (mlflow_endpoint with parse_params=False) and stream the body into the store and the
stored file out of it.

Multipart upload and presigned download are off (server-info says so). MLflow's proxied
multipart hands the client presigned URLs of the cloud store; this portal reaches its store
only through Django's storage API, which has no presigned multipart parts. Parts sent to
the portal itself would then be written twice (as parts, then joined) and the joining
request would take as long as the whole upload, with nothing gained over the single
streamed PUT. Clients that force multipart through MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD or
MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD get the "not supported" answers below, on which the
client falls back to the plain PUT and GET.
"""

from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path, re_path

from portal.errors import InvalidParameter
from portal.mlflow_http import Params, error_response, json_response, mlflow_endpoint
from tracking.services import artifacts as artifact_services

Json = dict[str, Any]

# The client recognises these messages (mlflow.exceptions._Unsupported*Exception.MESSAGE)
# and falls back to the proxied PUT / GET.
MULTIPART_UPLOAD_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
PRESIGNED_DOWNLOAD_UNSUPPORTED = "Presigned download is not supported for the current artifact repository"


# ---------------------------------------------------------------- one file: GET, PUT, DELETE


def artifact_file_response(artifact: artifact_services.ArtifactFile) -> FileResponse:
    """A download of an opened artifact, streamed in the store's chunk size."""
    response = FileResponse(artifact.file, as_attachment=True, filename=artifact.name)
    response.block_size = artifact_services.CHUNK_SIZE
    # Artifacts are whatever users uploaded: never let a browser run one in the portal's origin.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


def _download(request: HttpRequest, artifact_path: str) -> HttpResponse:
    return artifact_file_response(artifact_services.artifact_open(user=request.user, path=artifact_path))


def _upload(request: HttpRequest, artifact_path: str) -> HttpResponse:
    length = request.META.get("CONTENT_LENGTH")
    closing = False
    if length not in (None, ""):
        try:
            expected = int(length)
        except ValueError:
            raise InvalidParameter(f"Invalid Content-Length {length!r}.") from None
        if expected < 0:
            raise InvalidParameter(f"Invalid Content-Length {length!r}.")
        body = request  # HttpRequest.read() streams the body; request.body would load it whole
    elif request.META.get("wsgi.input_terminated"):
        # A chunked body the server decodes and ends for us (gunicorn): read to its end.
        body, expected = request.META["wsgi.input"], None
    else:
        # No length and a server that cannot delimit a chunked body (Django's runserver):
        # the mlflow client sends an empty file this way (requests uses chunked encoding
        # for a zero-length file), so the body is empty. The chunked terminator stays
        # unread in the connection; answering without a Content-Length makes the server
        # close it rather than parse that terminator as the next request.
        body, expected = request, 0
        closing = True
    artifact_services.artifact_upload(user=request.user, path=artifact_path, content=body, expected_size=expected)
    if closing:
        return StreamingHttpResponse([b"{}"], content_type="application/json")
    return json_response({})


def _delete(request: HttpRequest, artifact_path: str) -> HttpResponse:
    artifact_services.artifact_delete(user=request.user, path=artifact_path)
    return json_response({})


# The body is the file itself: left unread for _upload to stream.
artifact_file = mlflow_endpoint({"GET": _download, "PUT": _upload, "DELETE": _delete}, parse_params=False)


# ---------------------------------------------------------------- listing


def list_artifacts(request: HttpRequest, params: Params) -> Json:
    entries = artifact_services.artifact_list(user=request.user, path=params.str("path") or "")
    if not entries:
        return {}
    return {"files": [_entry_json(entry) for entry in entries]}


def _entry_json(entry: artifact_services.ArtifactEntry) -> Json:
    data: Json = {"path": entry.path, "is_dir": entry.is_dir}
    if entry.file_size is not None:
        data["file_size"] = entry.file_size
    return data


# ---------------------------------------------------------------- multipart and presigned: off


def multipart_unsupported(request: HttpRequest, params: Params, artifact_path: str) -> HttpResponse:
    return error_response("NOT_IMPLEMENTED", MULTIPART_UPLOAD_UNSUPPORTED, 501)


def presigned_unsupported(request: HttpRequest, params: Params, artifact_path: str) -> HttpResponse:
    return error_response("NOT_IMPLEMENTED", PRESIGNED_DOWNLOAD_UNSUPPORTED, 501)


# `[\s\S]+` rather than the path converter's `.+`: a path with a (decoded) newline must
# reach the validator and get MLflow's 400, not fall through to an HTML 404.
ARTIFACT_PATH = r"(?P<artifact_path>[\s\S]+)"

urlpatterns = [
    path("artifacts", mlflow_endpoint({"GET": list_artifacts})),
    re_path(rf"^artifacts/{ARTIFACT_PATH}\Z", artifact_file),
    re_path(rf"^mpu/create/{ARTIFACT_PATH}\Z", mlflow_endpoint({"POST": multipart_unsupported})),
    re_path(rf"^mpu/complete/{ARTIFACT_PATH}\Z", mlflow_endpoint({"POST": multipart_unsupported})),
    re_path(rf"^mpu/abort/{ARTIFACT_PATH}\Z", mlflow_endpoint({"POST": multipart_unsupported})),
    re_path(rf"^presigned/{ARTIFACT_PATH}\Z", mlflow_endpoint({"GET": presigned_unsupported})),
]
