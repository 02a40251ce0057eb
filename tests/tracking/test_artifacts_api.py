"""The MLflow artifact proxy through the real mlflow artifact repository and raw HTTP.

Experiments and runs are made with the ORM (the runs endpoints are not what is tested here);
files land in the per-test artifact root from tests/conftest.py, so assertions look at disk.
"""

import hashlib
import http.client
import os
import socket
import tracemalloc
import urllib.parse
import uuid
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from requests import HTTPError

from portal import permissions
from tracking.models import Experiment, LifecycleStage, LoggedModel, Run

API = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def artifact_root(_artifact_root) -> Path:
    return _artifact_root


def make_experiment(owner, *, location=None) -> Experiment:
    experiment = Experiment.objects.create(
        name=f"artifacts-{uuid.uuid4().hex[:8]}", owner=owner, artifact_location="", creation_time=0, last_update_time=0
    )
    experiment.artifact_location = location or f"mlflow-artifacts:/{experiment.pk}"
    experiment.save(update_fields=["artifact_location"])
    permissions.grant_owner(experiment, owner)  # as experiment_create does
    return experiment


def make_run(experiment, owner) -> Run:
    run_id = uuid.uuid4().hex
    return Run.objects.create(
        id=run_id,
        experiment=experiment,
        owner=owner,
        start_time=0,
        artifact_uri=f"{experiment.artifact_location}/{run_id}/artifacts",
    )


@pytest.fixture
def run(portal, alice) -> Run:
    return make_run(make_experiment(alice), alice)


@pytest.fixture
def repo(portal, run):
    return get_artifact_repository(run.artifact_uri)


def run_dir(artifact_root: Path, run: Run) -> Path:
    return artifact_root / run.artifact_uri.removeprefix("mlflow-artifacts:/")


def url_path(run: Run, rest: str = "") -> str:
    root = run.artifact_uri.removeprefix("mlflow-artifacts:/")
    return f"{API}/{root}/{rest}" if rest else f"{API}/{root}"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fresh_dir(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def files_under(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def raw_request(portal, method: str, raw_path: str, *, user=None, body: bytes | None = None):
    """Send `raw_path` exactly as written (requests would remove dot segments first)."""
    parsed = urllib.parse.urlsplit(portal.url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    headers = {"Authorization": f"Bearer {portal.token_for(user)}"} if user is not None else {}
    try:
        connection.request(method, raw_path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


# ---------------------------------------------------------------- the mlflow client round trip


def test_log_artifact_stores_the_file_under_the_runs_root(repo, run, tmp_path, artifact_root):
    repo.log_artifact(str(write(tmp_path / "notes.txt", "hello")))
    repo.log_artifact(str(write(tmp_path / "plot.png", "png")), "figures/2024")

    assert (run_dir(artifact_root, run) / "notes.txt").read_text() == "hello"
    assert (run_dir(artifact_root, run) / "figures/2024/plot.png").read_text() == "png"


def test_log_artifacts_uploads_a_tree_that_lists_with_sizes(repo, tmp_path):
    source = tmp_path / "src"
    write(source / "a.txt", "a")
    write(source / "sub" / "b.txt", "bb")
    write(source / "sub" / "deeper" / "c.txt", "ccc")
    repo.log_artifacts(str(source), "tree")

    top = repo.list_artifacts()
    tree = repo.list_artifacts("tree")
    sub = repo.list_artifacts("tree/sub")

    assert [(f.path, f.is_dir) for f in top] == [("tree", True)]
    assert [(f.path, f.is_dir, f.file_size) for f in tree] == [("tree/a.txt", False, 1), ("tree/sub", True, None)]
    assert [(f.path, f.is_dir, f.file_size) for f in sub] == [
        ("tree/sub/b.txt", False, 2),
        ("tree/sub/deeper", True, None),
    ]


def test_listing_a_missing_directory_is_empty(repo, portal, alice, run):
    response = portal.session(alice).get(
        portal.url + API, params={"path": run.artifact_uri.removeprefix("mlflow-artifacts:/") + "/nope"}
    )

    assert repo.list_artifacts("nope") == []
    assert response.status_code == 200 and response.json() == {}


def test_listing_a_file_is_empty(repo, tmp_path):
    repo.log_artifact(str(write(tmp_path / "f.txt", "x")))

    assert repo.list_artifacts("f.txt") == []


def test_download_artifacts_fetches_a_file_and_a_directory(repo, tmp_path):
    source = tmp_path / "src"
    write(source / "model" / "MLmodel", "flavors: {}")
    write(source / "model" / "data" / "weights.bin", "0101")
    write(source / "notes.txt", "hello")
    repo.log_artifacts(str(source))

    one = repo.download_artifacts("notes.txt", dst_path=fresh_dir(tmp_path / "one"))
    tree = repo.download_artifacts("model", dst_path=fresh_dir(tmp_path / "tree"))

    assert Path(one).read_text() == "hello"
    assert files_under(Path(tree)) == {"MLmodel": b"flavors: {}", "data/weights.bin": b"0101"}


def test_delete_artifacts_removes_a_file_and_a_directory(repo, run, tmp_path, artifact_root):
    source = tmp_path / "src"
    write(source / "keep.txt", "k")
    write(source / "gone.txt", "g")
    write(source / "dir" / "x" / "y.txt", "y")
    repo.log_artifacts(str(source))

    repo.delete_artifacts("gone.txt")
    repo.delete_artifacts("dir")

    assert files_under(run_dir(artifact_root, run)) == {"keep.txt": b"k"}
    assert not (run_dir(artifact_root, run) / "dir").exists()


def test_deleting_everything_empties_the_run_root(repo, run, tmp_path, artifact_root):
    repo.log_artifact(str(write(tmp_path / "a.txt", "a")), "d")

    repo.delete_artifacts()

    assert not run_dir(artifact_root, run).exists()


def test_deleting_a_missing_path_succeeds(repo):
    repo.delete_artifacts("never/was")


def test_an_empty_file_round_trips(repo, tmp_path):
    # requests sends a zero-length file with chunked encoding and no Content-Length.
    repo.log_artifact(str(write(tmp_path / "empty.txt", "")))
    repo.log_artifact(str(write(tmp_path / "after.txt", "after")))

    assert [(f.path, f.file_size) for f in repo.list_artifacts()] == [("after.txt", 5), ("empty.txt", 0)]
    assert Path(repo.download_artifacts("empty.txt", dst_path=fresh_dir(tmp_path / "dl"))).read_bytes() == b""


def test_a_chunked_empty_upload_leaves_the_connection_usable(portal, alice, run, artifact_root):
    # Django's runserver cannot read a chunked body; its terminator must not be parsed as
    # the next request on a kept-alive connection.
    parsed = urllib.parse.urlsplit(portal.url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    auth = {"Authorization": f"Bearer {portal.token_for(alice)}"}
    try:
        connection.request("PUT", url_path(run, "empty.txt"), body=iter([]), headers=auth, encode_chunked=True)
        first = connection.getresponse()
        first.read()
        connection.request("GET", url_path(run, "empty.txt"), headers=auth)
        second = connection.getresponse()
        second.read()
    finally:
        connection.close()

    assert (first.status, second.status) == (200, 200)
    assert (run_dir(artifact_root, run) / "empty.txt").read_bytes() == b""


def test_uploading_again_replaces_the_file(repo, run, tmp_path, artifact_root):
    repo.log_artifact(str(write(tmp_path / "v" / "model.txt", "first version, longer")))
    repo.log_artifact(str(write(tmp_path / "w" / "model.txt", "second")))

    assert files_under(run_dir(artifact_root, run)) == {"model.txt": b"second"}


def test_logged_model_artifacts_round_trip(portal, alice, tmp_path, artifact_root):
    experiment = make_experiment(alice)
    model_id = f"m-{uuid.uuid4().hex}"
    model = LoggedModel.objects.create(
        id=model_id,
        experiment=experiment,
        name="model",
        owner=alice,
        artifact_location=f"{experiment.artifact_location}/models/{model_id}/artifacts",
        creation_timestamp_ms=0,
        last_updated_timestamp_ms=0,
    )
    repo = get_artifact_repository(model.artifact_location)

    repo.log_artifact(str(write(tmp_path / "MLmodel", "artifact_path: model")))

    stored = artifact_root / f"{experiment.pk}/models/{model_id}/artifacts/MLmodel"
    assert stored.read_text() == "artifact_path: model"
    assert [f.path for f in repo.list_artifacts()] == ["MLmodel"]


def test_a_custom_experiment_location_round_trips(portal, alice, tmp_path, artifact_root):
    run = make_run(make_experiment(alice, location="mlflow-artifacts:/team-a/shared"), alice)
    repo = get_artifact_repository(run.artifact_uri)

    repo.log_artifact(str(write(tmp_path / "f.txt", "x")))

    assert (artifact_root / f"team-a/shared/{run.pk}/artifacts/f.txt").read_text() == "x"
    assert [f.path for f in repo.list_artifacts()] == ["f.txt"]


def test_the_run_artifacts_list_endpoint_gives_paths_from_the_run_root(repo, portal, alice, run, tmp_path):
    repo.log_artifact(str(write(tmp_path / "a.txt", "aa")), "sub")

    top = portal.session(alice).get(portal.url + "/api/2.0/mlflow/artifacts/list", params={"run_id": run.pk}).json()
    sub = portal.session(alice).get(
        portal.url + "/api/2.0/mlflow/artifacts/list", params={"run_uuid": run.pk, "path": "sub"}
    ).json()
    missing = portal.session(alice).get(
        portal.url + "/api/2.0/mlflow/artifacts/list", params={"run_id": run.pk, "path": "nope"}
    ).json()

    assert top == {"root_uri": run.artifact_uri, "files": [{"path": "sub", "is_dir": True}]}
    assert sub == {"root_uri": run.artifact_uri, "files": [{"path": "sub/a.txt", "is_dir": False, "file_size": 2}]}
    assert missing == {"root_uri": run.artifact_uri}


def test_the_run_artifacts_list_endpoint_says_404_for_an_unknown_run(portal, alice):
    response = portal.session(alice).get(
        portal.url + "/api/2.0/mlflow/artifacts/list", params={"run_id": uuid.uuid4().hex}
    )

    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


# ---------------------------------------------------------------- multipart is off, and the client copes


def test_server_info_says_multipart_transfers_are_off(portal):
    response = portal.session().get(portal.url + "/api/3.0/mlflow/server-info")

    assert response.status_code == 200
    assert response.json()["multipart_uploads_enabled"] is False
    assert response.json()["multipart_downloads_enabled"] is False


def test_a_client_forcing_multipart_upload_falls_back_to_a_plain_put(repo, run, tmp_path, artifact_root, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1")

    repo.log_artifact(str(write(tmp_path / "big.txt", "not that big")))

    assert (run_dir(artifact_root, run) / "big.txt").read_text() == "not that big"


def test_a_client_forcing_multipart_download_falls_back_to_a_plain_get(repo, tmp_path, monkeypatch):
    repo.log_artifact(str(write(tmp_path / "f.txt", "content")))
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "true")

    assert Path(repo.download_artifacts("f.txt", dst_path=fresh_dir(tmp_path / "dl"))).read_text() == "content"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "method, rest",
    [("GET", "f.txt"), ("PUT", "f.txt"), ("DELETE", "f.txt"), ("GET", "")],
)
def test_requests_without_credentials_get_401(portal, run, method, rest):
    if rest:
        body = b"x" if method == "PUT" else None
        response = portal.session().request(method, portal.url + url_path(run, rest), data=body)
    else:
        response = portal.session().get(portal.url + API, params={"path": url_path(run).removeprefix(API + "/")})

    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


def test_a_missing_file_gets_404_resource_does_not_exist(portal, alice, run, repo, tmp_path):
    response = portal.session(alice).get(portal.url + url_path(run, "nope.txt"))

    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException, match="404"):
        repo.download_artifacts("nope.txt", dst_path=str(tmp_path))


def test_a_directory_downloads_as_404(portal, alice, run, repo, tmp_path):
    repo.log_artifact(str(write(tmp_path / "x.txt", "x")), "model")

    response = portal.session(alice).get(portal.url + url_path(run, "model"))

    assert response.status_code == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_path_under_no_run_gets_404(portal, alice, method):
    response = portal.session(alice).request(
        method, portal.url + f"{API}/0/{uuid.uuid4().hex}/artifacts/x.txt", data=b"x" if method == "PUT" else None
    )

    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_path_under_no_run_lists_as_404(portal, alice):
    response = portal.session(alice).get(portal.url + API, params={"path": "0/nothing/here"})

    assert response.status_code == 404


def test_a_wrong_method_gets_405(portal, alice, run):
    response = portal.session(alice).post(portal.url + url_path(run, "f.txt"), data=b"x")

    assert response.status_code == 405


HOSTILE_SUFFIXES = [
    "../../../outside/secret.txt",
    "a/../../../../outside/secret.txt",
    "%2e%2e/%2e%2e/%2e%2e/outside/secret.txt",
    "%2E%2E%2F%2E%2E%2F%2E%2E%2Foutside%2Fsecret.txt",
    "%252e%252e/%252e%252e/%252e%252e/outside/secret.txt",
    "%25252e%25252e/outside/secret.txt",
    "..%5c..%5c..%5coutside%5csecret.txt",
    "%5c%5coutside",
    "secret.txt%00.png",
    "a;b.txt",
    "a%3bb.txt",
    "a%23b.txt",
    "a%3fb.txt",
    "a%0ab.txt",
]


@pytest.mark.parametrize("suffix", HOSTILE_SUFFIXES)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_traversal_attempts_are_refused_and_touch_nothing(portal, alice, run, artifact_root, tmp_path, method, suffix):
    outside = write(tmp_path / "outside" / "secret.txt", "TOP-SECRET-CONTENT")
    inside = write(run_dir(artifact_root, run) / "kept.txt", "kept")
    before = files_under(tmp_path)

    status, content_type, body = raw_request(
        portal, method, url_path(run, suffix), user=alice, body=b"overwritten" if method == "PUT" else None
    )

    assert status == 400, body
    assert content_type == "application/json"
    assert b"INVALID_PARAMETER_VALUE" in body
    assert b"TOP-SECRET-CONTENT" not in body
    assert files_under(tmp_path) == before
    assert outside.read_text() == "TOP-SECRET-CONTENT" and inside.read_text() == "kept"


def test_an_absolute_path_is_refused(portal, alice, artifact_root):
    status, _, body = raw_request(portal, "PUT", f"{API}//etc/passwd-copy", user=alice, body=b"x")

    assert status == 400 and b"INVALID_PARAMETER_VALUE" in body
    assert not list(artifact_root.rglob("*"))


@pytest.mark.parametrize("path", ["..", "%2e%2e", "%252e%252e", "0/../..", "/etc"])
def test_traversal_in_a_listing_is_refused(portal, alice, path):
    response = portal.session(alice).get(portal.url + API, params={"path": path})

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_an_upload_that_ends_early_stores_nothing(portal, alice, run, artifact_root):
    target = run_dir(artifact_root, run) / "partial.bin"
    parsed = urllib.parse.urlsplit(portal.url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=30) as sock:
        sock.sendall(
            f"PUT {url_path(run, 'partial.bin')} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
            f"Authorization: Bearer {portal.token_for(alice)}\r\nContent-Length: 100000\r\n\r\n".encode()
            + b"only a little"
        )
        sock.shutdown(socket.SHUT_WR)  # the client goes away mid-body
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk

    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert not target.exists()
    assert not [p for p in artifact_root.rglob("*") if p.is_file()]


def test_a_download_is_an_attachment_a_browser_will_not_run(portal, alice, repo, run, tmp_path):
    repo.log_artifact(str(write(tmp_path / "page.html", "<script>alert(1)</script>")))

    response = portal.session(alice).get(portal.url + url_path(run, "page.html"))

    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# ---------------------------------------------------------------- who may do what


def test_another_user_can_read_alices_artifacts(portal, charlie, repo, run, tmp_path):
    repo.log_artifact(str(write(tmp_path / "f.txt", "alice's")))
    portal.act_as(charlie)

    assert [f.path for f in repo.list_artifacts()] == ["f.txt"]
    assert Path(repo.download_artifacts("f.txt", dst_path=fresh_dir(tmp_path / "dl"))).read_text() == "alice's"


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_another_user_may_not_change_alices_artifacts(portal, charlie, repo, run, tmp_path, artifact_root, method):
    repo.log_artifact(str(write(tmp_path / "f.txt", "alice's")))

    response = portal.session(charlie).request(
        method, portal.url + url_path(run, "f.txt"), data=b"charlie's" if method == "PUT" else None
    )

    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert (run_dir(artifact_root, run) / "f.txt").read_text() == "alice's"


def test_another_user_gets_an_mlflow_error_from_the_client(portal, charlie, repo, tmp_path):
    portal.act_as(charlie)

    with pytest.raises(HTTPError, match="403"):
        repo.log_artifact(str(write(tmp_path / "f.txt", "charlie's")))


def test_a_deleted_run_is_readable_but_takes_no_new_files(portal, alice, repo, run, tmp_path):
    repo.log_artifact(str(write(tmp_path / "f.txt", "before")))
    Run.objects.filter(pk=run.pk).update(lifecycle_stage=LifecycleStage.DELETED)

    response = portal.session(alice).put(portal.url + url_path(run, "g.txt"), data=b"after")

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert Path(repo.download_artifacts("f.txt", dst_path=fresh_dir(tmp_path / "dl"))).read_text() == "before"


# ---------------------------------------------------------------- constant memory


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def test_a_large_upload_and_download_stream_in_constant_memory(repo, run, tmp_path, artifact_root):
    # The live server runs in this process, so tracemalloc sees both the client and the
    # server: a body held in memory anywhere would show up as a peak of its size.
    size = 64 * 1024 * 1024
    source = tmp_path / "big.bin"
    with open(source, "wb") as f:
        block = os.urandom(1024 * 1024)
        for i in range(size // len(block)):
            f.write(block[i:] + block[:i])

    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        repo.log_artifact(str(source))
        upload_peak = tracemalloc.get_traced_memory()[1] - baseline

        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        downloaded = Path(repo.download_artifacts("big.bin", dst_path=fresh_dir(tmp_path / "dl")))
        download_peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()

    assert sha256(run_dir(artifact_root, run) / "big.bin") == sha256(source)
    assert sha256(downloaded) == sha256(source)
    assert upload_peak < size // 8, f"upload peaked at {upload_peak / 2**20:.1f} MiB"
    assert download_peak < size // 8, f"download peaked at {download_peak / 2**20:.1f} MiB"
