"""The artifact store: run and logged-model files behind the MLflow artifact proxy.

Files live in Django's storage named "artifacts" (`STORAGES["artifacts"]`): the local
filesystem by default, S3 through django-storages in production. A proxied artifact path
is `<location>/<run_id>/artifacts/<rest>` (a run) or `<location>/models/<model_id>/artifacts/<rest>`
(a logged model), where `mlflow-artifacts:/<location>` is the experiment's artifact location.
Every path is checked twice before storage sees it:

1. Confinement (`artifact_path_clean`): a plain relative path, with no way to climb out of
   it however it is spelled or encoded.
2. Ownership (`artifact_resolve`): the path lies inside the artifact root of a run or
   logged model that really has that root, and the user may act on that object
   (portal.permissions: READ to download and list, EDIT to upload, MANAGE to delete), or
   for reads, on an object of another app that vouches for the path (a registered model
   version's files, see artifact_read_through_register).

Decisions:
- A path that names no run or logged model is NotFound, for writes too.
- Deleted runs and logged models (or those of a deleted experiment) stay readable, as
  MLflow shows them, and deletable (removing a deleted run's files is cleanup), but take no
  new files: an upload gets INVALID_PARAMETER_VALUE, as logging to a deleted run does.
- `//` and a trailing `/` are normalised away (the client produces both); `.` and `..`
  segments, absolute paths, backslashes, control characters, `;`, `#` and `?` are refused,
  as is anything that becomes one of those after percent-decoding, once or repeatedly.
- Uploads and downloads stream in chunks; no file is ever held in memory. On a local
  filesystem an upload is written to a staging file and renamed into place, so readers
  never see half a file and an interrupted upload leaves the previous version intact.
  On S3 an upload is a multipart upload that appears only when complete; a download goes
  through django-storages' S3File, which first copies the object into a SpooledTemporaryFile:
  its `max_memory_size` option must be set (it defaults to 0, "never spill to disk").
- Deleting a path that does not exist succeeds (idempotent retries).
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.utils._os import safe_makedirs

from portal import permissions
from portal.errors import InvalidParameter, NotFound, PortalError
from tracking.models import LifecycleStage, LoggedModel, Run
from tracking.paths import ARTIFACT_SCHEME, path_confine, store_path

User = AbstractBaseUser | AnonymousUser

CHUNK_SIZE = 1024 * 1024
MAX_PATH_BYTES = 1024  # S3's key limit; filesystems allow more
MAX_SEGMENT_BYTES = 255  # NAME_MAX on common filesystems
# Uploads are staged here on a local filesystem store. `~` cannot appear in an experiment's
# artifact location (see experiments.artifact_location_parse), so no artifact path reaches it.
STAGING_DIR = "~staging"

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")


def _get_storage() -> Storage:
    """The artifact storage. Tests swap it by replacing this function or STORAGES["artifacts"]."""
    return storages["artifacts"]


# ---------------------------------------------------------------- path confinement


def _invalid_path(path: str, why: str) -> InvalidParameter:
    shown = path if len(path) <= 200 else path[:200] + "..."
    return InvalidParameter(f"Invalid artifact path {shown!r}: {why}.")


def artifact_path_clean(path: str) -> str:
    """`path` as a normalised relative path (`a/b/c`, maybe empty), or InvalidParameter.

    The path has already been percent-decoded once by the web server; whatever further
    decoding a later component might apply must not turn it into something dangerous
    either (tracking.paths.path_confine). The path itself is kept literally: `a%20b` names
    a file called `a%20b`.
    """
    if not isinstance(path, str):
        raise InvalidParameter("Invalid artifact path: expected a string.")
    path_confine(path, lambda why: _invalid_path(path, why))
    segments = [segment for segment in path.split("/") if segment]
    cleaned = "/".join(segments)
    if len(cleaned.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise _invalid_path(path, f"longer than {MAX_PATH_BYTES} bytes")
    for segment in segments:
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise _invalid_path(path, f"a path segment is longer than {MAX_SEGMENT_BYTES} bytes")
    return cleaned


# ---------------------------------------------------------------- resolution and access


@dataclass(frozen=True)
class ArtifactTarget:
    """An artifact path resolved to the object that guards it."""

    guard: Run | LoggedModel
    root: str  # storage name of the object's artifact root, e.g. "1/<run_id>/artifacts"
    relative: str  # path inside the root; "" for the root itself

    @property
    def name(self) -> str:
        return f"{self.root}/{self.relative}" if self.relative else self.root


def _not_found(path: str) -> NotFound:
    # The same words whether nothing is there or the user may not see it: nothing leaks.
    return NotFound(f"Artifact '{path}' does not exist.")


def _candidates(segments: list[str]) -> list[tuple[type[Run] | type[LoggedModel], str, int]]:
    """(model, id, root length) for every place the path could hold an artifact root, leftmost first.

    The leftmost verified root wins: if one root ever lies inside another (an experiment
    location chosen inside someone's run), the outer owner decides who may touch it.
    """
    found: list[tuple[type[Run] | type[LoggedModel], str, int]] = []
    for i in range(1, len(segments) - 1):
        if _RUN_ID.fullmatch(segments[i]) and segments[i + 1] == "artifacts":
            found.append((Run, segments[i], i + 2))
        if (
            segments[i] == "models"
            and i + 2 < len(segments)
            and _MODEL_ID.fullmatch(segments[i + 1])
            and segments[i + 2] == "artifacts"
        ):
            found.append((LoggedModel, segments[i + 1], i + 3))
    return found


def _root_uri(obj: Run | LoggedModel) -> str:
    return obj.artifact_uri if isinstance(obj, Run) else obj.artifact_location


def _locate(path: str) -> ArtifactTarget:
    """The run or logged model whose artifact root holds `path` (no access check yet)."""
    cleaned = artifact_path_clean(path)
    segments = cleaned.split("/") if cleaned else []
    for model, object_id, root_length in _candidates(segments):
        obj = model.objects.select_related("experiment").filter(pk=object_id).first()
        if obj is None or store_path(_root_uri(obj)) != "/".join(segments[:root_length]):
            continue
        return ArtifactTarget(
            guard=obj, root="/".join(segments[:root_length]), relative="/".join(segments[root_length:])
        )
    raise _not_found(path)


# Other apps may make artifacts readable through objects of their own: the registry lets a
# registered model's readers read the files behind its versions (registry.apps registers
# it), without any grant on the experiment they came from. Each check gets the user and
# the storage locations (`mlflow-artifacts:/<prefix>`) of every prefix of the path.
ReadThrough = Callable[[User, list[str]], bool]
_read_through: list[ReadThrough] = []


def artifact_read_through_register(check: ReadThrough) -> None:
    if check not in _read_through:
        _read_through.append(check)


def _readable_through_others(user: User, target: ArtifactTarget) -> bool:
    segments = target.name.split("/")
    locations = [f"{ARTIFACT_SCHEME}:/" + "/".join(segments[:n]) for n in range(1, len(segments) + 1)]
    return any(check(user, locations) for check in _read_through)


def _is_deleted(obj: Run | LoggedModel) -> bool:
    return LifecycleStage.DELETED in (obj.lifecycle_stage, obj.experiment.lifecycle_stage)


def artifact_resolve(*, user: User, path: str, action: str) -> ArtifactTarget:
    """Resolve a proxied artifact path and check that `user` may do `action` there: READ to
    download and list, EDIT to upload, MANAGE to delete.

    Raises InvalidParameter for a path that could escape its root, NotFound when the path
    names no run or logged model (or one the user may not see), PermissionDenied when the
    user may see the object but not change it.
    """
    if action not in (permissions.READ, permissions.EDIT, permissions.MANAGE):
        raise ValueError(f"unknown artifact action {action!r}")
    target = _locate(path)
    if action == permissions.READ and not permissions.can(user, action, target.guard):
        if permissions.is_active_user(user) and _readable_through_others(user, target):
            return target
    permissions.require(user, action, target.guard, not_found=str(_not_found(path)))
    return target


# ---------------------------------------------------------------- storage helpers


def _local_path(storage: Storage, name: str) -> str | None:
    """The filesystem path behind `name`, or None for a remote store (S3)."""
    try:
        return storage.path(name)
    except NotImplementedError:
        return None


def _is_file(storage: Storage, name: str) -> bool:
    local = _local_path(storage, name)
    if local is not None:
        return os.path.isfile(local)
    # Remote stores have no directories: an object under this key is a file.
    return storage.exists(name)


@dataclass(frozen=True)
class ArtifactEntry:
    path: str  # relative to the listed directory (or to the run root, see run_artifacts_list)
    is_dir: bool
    file_size: int | None


def _list_dir(storage: Storage, name: str) -> list[ArtifactEntry]:
    """The direct children of directory `name`; empty if it is missing or is a file."""
    try:
        directories, files = storage.listdir(name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    entries = [ArtifactEntry(path=d, is_dir=True, file_size=None) for d in directories]
    for file_name in files:
        try:
            size = storage.size(f"{name}/{file_name}")
        except FileNotFoundError:
            continue  # deleted while we listed
        entries.append(ArtifactEntry(path=file_name, is_dir=False, file_size=size))
    return sorted(entries, key=lambda entry: entry.path)


def _delete_tree(storage: Storage, name: str) -> None:
    directories, files = storage.listdir(name)
    for file_name in files:
        storage.delete(f"{name}/{file_name}")
    for directory in directories:
        _delete_tree(storage, f"{name}/{directory}")
    # Removes the now empty directory on a filesystem; a no-op for a remote store.
    try:
        storage.delete(name)
    except OSError as exc:
        # A file uploaded while we deleted: it was written after the delete, so it stays.
        if exc.errno != errno.ENOTEMPTY:
            raise


# ---------------------------------------------------------------- reads


@dataclass
class ArtifactFile:
    file: File
    name: str  # the file name (last path segment), for Content-Disposition


def artifact_open(*, user: User, path: str) -> ArtifactFile:
    """Open a file artifact for streaming. The caller closes it (FileResponse does).

    NotFound when the path is missing or is a directory: the client relies on a 404 to
    tell a directory-less model path from a file.
    """
    target = artifact_resolve(user=user, path=path, action=permissions.READ)
    storage = _get_storage()
    if not target.relative or not _is_file(storage, target.name):
        raise _not_found(path)
    try:
        handle = storage.open(target.name, "rb")
    except (FileNotFoundError, IsADirectoryError):
        raise _not_found(path) from None
    return ArtifactFile(file=handle, name=posixpath.basename(target.name))


def artifact_list(*, user: User, path: str) -> list[ArtifactEntry]:
    """The direct children of an artifact directory, paths relative to it.

    A missing directory, or a path that names a file, lists as empty (MLflow's `{}`).
    """
    target = artifact_resolve(user=user, path=path, action=permissions.READ)
    return _list_dir(_get_storage(), target.name)


def run_artifacts_list(*, user: User, run: Run, path: str | None) -> list[ArtifactEntry]:
    """The children of `path` inside `run`'s artifact root, paths relative to that root.

    `run` comes from a selector that already checked READ. A run whose artifact URI is not
    in the portal's store has nothing the portal could list.
    """
    permissions.require(user, permissions.READ, run)
    root = store_path(run.artifact_uri)
    if not root:
        return []
    relative = artifact_path_clean(path or "")
    name = f"{root}/{relative}" if relative else root
    entries = _list_dir(_get_storage(), name)
    return [
        ArtifactEntry(
            path=f"{relative}/{entry.path}" if relative else entry.path,
            is_dir=entry.is_dir,
            file_size=entry.file_size,
        )
        for entry in entries
    ]


# ---------------------------------------------------------------- writes


class IncompleteUpload(InvalidParameter):
    """The request body ended before its Content-Length: the client went away mid-upload."""


class _CheckedReader:
    """A read-only view of an upload body that fails when it ends before `expected` bytes.

    A client that disconnects mid-upload looks, to the application, like a short body;
    without this check a truncated file would be stored as if it were complete.
    """

    closed = False

    def __init__(self, stream: BinaryIO, expected: int | None):
        self._stream = stream
        self.expected = expected
        self.received = 0

    def read(self, size: int = -1) -> bytes:
        if self.expected is not None:
            remaining = self.expected - self.received
            if remaining <= 0:
                return b""
            size = remaining if size is None or size < 0 else min(size, remaining)
        data = self._stream.read(size)
        self.received += len(data)
        if not data and self.expected is not None and self.received < self.expected:
            raise IncompleteUpload(
                f"The upload ended after {self.received} of {self.expected} bytes; nothing was stored."
            )
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _write_local(storage: Storage, name: str, local: str, reader: _CheckedReader) -> None:
    """Stream into a staging file on the same filesystem, then rename it over `local`."""
    staging = _local_path(storage, f"{STAGING_DIR}/{uuid.uuid4().hex}")
    mode = getattr(storage, "directory_permissions_mode", None)
    for directory in (os.path.dirname(staging), os.path.dirname(local)):
        try:
            if mode is not None:
                safe_makedirs(directory, mode, exist_ok=True)
            else:
                os.makedirs(directory, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidParameter(f"Cannot store '{name}': a parent of it is a file.") from None
    # 0o666 and O_EXCL as FileSystemStorage does: the umask applies, nothing is clobbered.
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := reader.read(CHUNK_SIZE):
                out.write(chunk)
        file_mode = getattr(storage, "file_permissions_mode", None)
        if file_mode is not None:
            os.chmod(staging, file_mode)
        try:
            os.replace(staging, local)
        except IsADirectoryError:
            raise InvalidParameter(f"Cannot store '{name}': a directory has that name.") from None
    except BaseException:
        try:
            os.remove(staging)
        except FileNotFoundError:
            pass
        raise


def _write_remote(storage: Storage, name: str, reader: _CheckedReader) -> None:
    """Stream to a remote store (S3: a multipart upload that only appears when complete)."""
    try:
        saved = storage.save(name, File(reader, name=posixpath.basename(name)))
    except PortalError:
        raise
    except Exception:
        if reader.expected is not None and reader.received < reader.expected:
            raise IncompleteUpload(
                f"The upload ended after {reader.received} of {reader.expected} bytes; nothing was stored."
            ) from None
        raise
    if saved != name:
        # The store picked another name instead of replacing the file: a configuration
        # error (S3 needs file_overwrite=True). Do not leave the stray copy behind.
        storage.delete(saved)
        raise RuntimeError(f"The artifact storage saved {name!r} as {saved!r}; configure it to overwrite files.")


def artifact_upload(*, user: User, path: str, content: BinaryIO, expected_size: int | None) -> int:
    """Store `content` (read in chunks to its end) at `path`, replacing any file there.

    `expected_size` is the request's Content-Length, or None when the body is delimited
    by the server (chunked); a body that ends early is refused and nothing is stored.
    Returns the number of bytes stored. Idempotent: the same upload again gives the same file.
    """
    target = artifact_resolve(user=user, path=path, action=permissions.EDIT)
    if _is_deleted(target.guard):
        raise InvalidParameter(
            f"Cannot upload '{path}': its {target.guard._meta.verbose_name} is deleted; restore it first."
        )
    if not target.relative:
        raise InvalidParameter(f"Cannot upload to '{path}': it is the artifact root, not a file.")
    storage = _get_storage()
    reader = _CheckedReader(content, expected_size)
    local = _local_path(storage, target.name)
    if local is not None:
        _write_local(storage, target.name, local, reader)
    else:
        _write_remote(storage, target.name, reader)
    return reader.received


def artifact_delete(*, user: User, path: str) -> None:
    """Delete a file, or a directory and everything under it. A missing path is not an error.

    Needs MANAGE, as deleting the run itself does."""
    target = artifact_resolve(user=user, path=path, action=permissions.MANAGE)
    storage = _get_storage()
    if _is_file(storage, target.name):
        storage.delete(target.name)
        return
    try:
        _delete_tree(storage, target.name)
    except FileNotFoundError:
        pass

