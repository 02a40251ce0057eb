"""The artifact services against a remote (S3-like) store, and their storage-level rules.

S3 itself is not available to the tests; RemoteStorage below has the properties of
django-storages' S3Storage with file_overwrite=True that the services rely on: no local
path, keys rather than directories, a missing prefix lists as empty, deleting a missing
key is fine, and the body is consumed by read() calls without seeking.
"""

import io
import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import Storage

from portal import permissions
from portal.errors import InvalidParameter, NotFound
from tracking.models import Experiment, LifecycleStage, Run
from tracking.services import artifacts as artifact_services
from tracking.services.artifacts import (
    artifact_delete,
    artifact_list,
    artifact_open,
    artifact_upload,
    run_artifacts_list,
)


class RemoteStorage(Storage):
    def __init__(self, *, overwrite: bool = True):
        self.objects: dict[str, bytes] = {}
        self.overwrite = overwrite

    def path(self, name):
        raise NotImplementedError("no local path")

    def get_available_name(self, name, max_length=None):
        if self.overwrite or name not in self.objects:
            return name
        return f"{name}_copy"

    def _save(self, name, content):
        # As boto3's upload_fileobj does under S3Storage: read(size) calls until the end.
        parts = []
        while chunk := content.read(256 * 1024):
            parts.append(chunk)
        self.objects[name] = b"".join(parts)
        return name

    def _open(self, name, mode="rb"):
        return ContentFile(self.objects[name], name=name)

    def exists(self, name):
        return name in self.objects

    def delete(self, name):
        self.objects.pop(name, None)

    def size(self, name):
        return len(self.objects[name])

    def listdir(self, name):
        prefix = f"{name.rstrip('/')}/" if name else ""
        directories, files = set(), []
        for key in self.objects:
            if key.startswith(prefix):
                rest = key[len(prefix) :]
                if "/" in rest:
                    directories.add(rest.split("/", 1)[0])
                else:
                    files.append(rest)
        return sorted(directories), files


@pytest.fixture
def remote(monkeypatch) -> RemoteStorage:
    storage = RemoteStorage()
    monkeypatch.setattr(artifact_services, "_get_storage", lambda: storage)
    return storage


@pytest.fixture
def run(alice) -> Run:
    experiment = Experiment.objects.create(
        name="storage", owner=alice, artifact_location="mlflow-artifacts:/team", creation_time=0, last_update_time=0
    )
    permissions.grant_owner(experiment, alice)  # as experiment_create does
    run_id = uuid.uuid4().hex
    return Run.objects.create(
        id=run_id,
        experiment=experiment,
        owner=alice,
        start_time=0,
        artifact_uri=f"mlflow-artifacts:/team/{run_id}/artifacts",
    )


def root(run: Run) -> str:
    return run.artifact_uri.removeprefix("mlflow-artifacts:/")


def upload(user, path: str, data: bytes) -> int:
    return artifact_upload(user=user, path=path, content=io.BytesIO(data), expected_size=len(data))


def test_an_upload_reaches_a_remote_store_under_the_runs_key(remote, alice, run):
    stored = upload(alice, f"{root(run)}/model/MLmodel", b"flavors: {}")

    assert stored == len(b"flavors: {}")
    assert remote.objects == {f"{root(run)}/model/MLmodel": b"flavors: {}"}


class ChunkedBody:
    """A request body that may only be read in chunks, as a large upload must be: a read()
    of everything, or of more than `limit` bytes at once, fails the test."""

    def __init__(self, data: bytes, limit: int):
        self._data = io.BytesIO(data)
        self.limit = limit
        self.read_sizes: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self.limit:
            raise AssertionError(f"the upload body was read whole: read({size})")
        self.read_sizes.append(size)
        return self._data.read(size)


@pytest.mark.parametrize("known_length", [True, False], ids=["content-length", "chunked"])
def test_a_remote_upload_is_read_in_chunks(remote, alice, run, known_length):
    data = bytes(range(256)) * (12 * 1024)  # 3 MiB
    body = ChunkedBody(data, limit=artifact_services.CHUNK_SIZE)

    stored = artifact_upload(
        user=alice, path=f"{root(run)}/big.bin", content=body, expected_size=len(data) if known_length else None
    )

    assert stored == len(data)
    assert remote.objects == {f"{root(run)}/big.bin": data}
    assert len(body.read_sizes) > 1


def test_a_short_body_stores_nothing_in_a_remote_store(remote, alice, run):
    with pytest.raises(InvalidParameter, match="ended after 5 of 100 bytes"):
        artifact_upload(user=alice, path=f"{root(run)}/f.bin", content=io.BytesIO(b"12345"), expected_size=100)

    assert remote.objects == {}


def test_a_store_that_renames_instead_of_replacing_is_refused_and_cleaned_up(monkeypatch, alice, run):
    storage = RemoteStorage(overwrite=False)
    monkeypatch.setattr(artifact_services, "_get_storage", lambda: storage)
    upload(alice, f"{root(run)}/f.txt", b"one")

    with pytest.raises(RuntimeError, match="overwrite"):
        upload(alice, f"{root(run)}/f.txt", b"two")

    assert storage.objects == {f"{root(run)}/f.txt": b"one"}


def test_a_remote_store_lists_prefixes_as_directories(remote, alice, run):
    upload(alice, f"{root(run)}/a.txt", b"a")
    upload(alice, f"{root(run)}/sub/b.txt", b"bb")

    top = artifact_list(user=alice, path=root(run))
    missing = artifact_list(user=alice, path=f"{root(run)}/nope")
    from_root = run_artifacts_list(user=alice, run=run, path="sub")

    assert [(e.path, e.is_dir, e.file_size) for e in top] == [("a.txt", False, 1), ("sub", True, None)]
    assert missing == []
    assert [(e.path, e.file_size) for e in from_root] == [("sub/b.txt", 2)]


def test_a_remote_file_opens_and_a_prefix_does_not(remote, alice, run):
    upload(alice, f"{root(run)}/sub/b.txt", b"bb")

    opened = artifact_open(user=alice, path=f"{root(run)}/sub/b.txt")

    assert (opened.name, opened.file.read()) == ("b.txt", b"bb")
    with pytest.raises(NotFound):
        artifact_open(user=alice, path=f"{root(run)}/sub")


def test_deleting_a_remote_prefix_removes_everything_under_it_and_nothing_else(remote, alice, run):
    upload(alice, f"{root(run)}/keep.txt", b"k")
    upload(alice, f"{root(run)}/dir/x.txt", b"x")
    upload(alice, f"{root(run)}/dir/deeper/y.txt", b"y")
    upload(alice, f"{root(run)}/dirt.txt", b"not under dir/")

    artifact_delete(user=alice, path=f"{root(run)}/dir")

    assert sorted(remote.objects) == [f"{root(run)}/dirt.txt", f"{root(run)}/keep.txt"]


def test_uploading_to_the_artifact_root_itself_is_refused(remote, alice, run):
    with pytest.raises(InvalidParameter):
        upload(alice, root(run), b"x")


def test_a_run_in_a_deleted_experiment_takes_no_new_files(remote, alice, run):
    Experiment.objects.filter(pk=run.experiment_id).update(lifecycle_stage=LifecycleStage.DELETED)

    with pytest.raises(InvalidParameter, match="deleted"):
        upload(alice, f"{root(run)}/f.txt", b"x")


def test_a_deleted_run_can_still_have_its_files_deleted(remote, alice, run):
    upload(alice, f"{root(run)}/f.txt", b"x")
    Run.objects.filter(pk=run.pk).update(lifecycle_stage=LifecycleStage.DELETED)

    artifact_delete(user=alice, path=f"{root(run)}/f.txt")

    assert remote.objects == {}


def test_a_file_cannot_be_written_where_a_directory_is(alice, run, _artifact_root):
    upload(alice, f"{root(run)}/model/MLmodel", b"x")

    with pytest.raises(InvalidParameter, match="directory"):
        upload(alice, f"{root(run)}/model", b"y")


def test_a_file_cannot_be_written_below_a_file(alice, run, _artifact_root):
    upload(alice, f"{root(run)}/model", b"x")

    with pytest.raises(InvalidParameter, match="parent"):
        upload(alice, f"{root(run)}/model/MLmodel", b"y")


def test_a_failed_local_upload_keeps_the_previous_version_and_leaves_no_staging_file(alice, run, _artifact_root):
    upload(alice, f"{root(run)}/model.bin", b"version one")

    with pytest.raises(InvalidParameter):
        artifact_upload(user=alice, path=f"{root(run)}/model.bin", content=io.BytesIO(b"vers"), expected_size=50)

    assert (_artifact_root / root(run) / "model.bin").read_bytes() == b"version one"
    assert not [p for p in (_artifact_root / artifact_services.STAGING_DIR).iterdir()]
