"""Where a model version's files are: resolving and checking the `source` of a new version.

A version may only point into the portal's own artifact store, at files the registering
user may read. The accepted forms:

- `models:/<logged model id>`, with the same id as `model_id` (MLflow 3's log_model flow);
- `models:/<name>/<version>` (or `@alias`, `/<stage>`, `/latest`): another registered
  version, resolved now to the files it points at (MlflowClient.copy_model_version);
- `runs:/<run_id>/<path>`: a directory of the run's artifacts. When nothing was logged there
  but the run has a logged model of that name (MLflow 3 logging), the version points at the
  logged model, so it can be loaded;
- `mlflow-artifacts:/<experiment>/<run_id>/artifacts/<path>` and
  `mlflow-artifacts:/<experiment>/models/<model_id>/artifacts[/<path>]`: the artifact
  proxy's own locations (what the client sends for a classic run-artifact model).

A prompt version (the client's prompt registry) has a placeholder source (`dummy-source`,
`prompt-template`) and no files: see prompt_source_resolve.

Everything else is INVALID_PARAMETER_VALUE: local paths, `file:`, `http(s):`, `s3:` and
other schemes, hosts, and whatever the store's confinement rule refuses
(tracking.paths.path_confine: `..` and `.` segments however they are percent-encoded,
backslashes, control characters, `;`, `#`, `?`). A source naming a run or logged model that does not exist, or that the
user may not read, is refused with the same message (nothing leaks). When `run_id` is
given, the source must lie in that run (a logged model's source run counts); when
`model_id` is given, the source must be that logged model.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from portal import permissions
from portal.errors import InvalidParameter, NotFound
from registry.models import RegisteredModel, RegisteredModelTag
from tracking import selectors as tracking_selectors
from tracking.models import LifecycleStage, LoggedModel, LoggedModelStatus, Run
from tracking.paths import ARTIFACT_SCHEME, path_confine, store_path
from tracking.services import artifacts as artifact_services

User = AbstractBaseUser | AnonymousUser

# What the client registers as the source of a prompt version (mlflow.prompt.constants):
# a prompt's text lives in the version's tags, and there are no files.
PROMPT_SOURCES = frozenset({"dummy-source", "prompt-template"})
PROMPT_MODEL_TAG = "mlflow.prompt.is_prompt"
PROMPT_TEXT_TAG = "mlflow.prompt.text"
MAX_SOURCE_LENGTH = 1000  # ModelVersion.source
MAX_STORAGE_LOCATION_LENGTH = 1000  # ModelVersion.storage_location
MODEL_FILE = "MLmodel"

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_ACCEPTED = (
    "models:/<model_id>, models:/<name>/<version>, runs:/<run_id>/<path>, or an mlflow-artifacts:/ "
    "location of a run or logged model in this server's artifact store"
)


@dataclass(frozen=True)
class ResolvedSource:
    storage_location: str  # mlflow-artifacts:/<path> in the portal's store
    run: Run | None
    logged_model: LoggedModel | None


def _invalid(source: str, why: str) -> InvalidParameter:
    shown = source if len(source) <= 200 else source[:200] + "..."
    return InvalidParameter(f"Invalid model version source {shown!r}: {why}.")


def _unresolved(source: str) -> InvalidParameter:
    # One message for "missing" and "not yours to read": the source names nothing you can see.
    return _invalid(source, "it does not name a run, logged model or model version that you can read")


def _location(root_uri: str, relative: str, source: str) -> str:
    root = store_path(root_uri)
    if not root:
        raise _invalid(source, "its files are not in this server's artifact store")
    location = f"{ARTIFACT_SCHEME}:/{root}/{relative}" if relative else f"{ARTIFACT_SCHEME}:/{root}"
    if len(location) > MAX_STORAGE_LOCATION_LENGTH:
        raise _invalid(source, f"the location of its files is longer than {MAX_STORAGE_LOCATION_LENGTH} characters")
    return location


def _active_run(user: User, run_id: str, source: str) -> Run:
    try:
        run = tracking_selectors.run_get_for_user(user, run_id)
    except NotFound:
        raise _unresolved(source) from None
    if LifecycleStage.DELETED in (run.lifecycle_stage, run.experiment.lifecycle_stage):
        raise _invalid(source, f"run '{run.pk}' is deleted")
    return run


def _usable_logged_model(user: User, model_id: str, source: str) -> LoggedModel:
    try:
        model = tracking_selectors.logged_model_get_for_user(user, model_id)
    except NotFound:
        raise _unresolved(source) from None
    if model.experiment.lifecycle_stage == LifecycleStage.DELETED:
        raise _invalid(source, f"logged model '{model.pk}' is in a deleted experiment")
    if model.status == LoggedModelStatus.UPLOAD_FAILED:
        raise _invalid(source, f"the upload of logged model '{model.pk}' failed")
    return model


def _from_logged_model(model: LoggedModel, relative: str, source: str) -> ResolvedSource:
    return ResolvedSource(_location(model.artifact_location, relative, source), model.source_run, model)


def _runs_source(user: User, source: str, path: str) -> ResolvedSource:
    run_id, _, relative = path.partition("/")
    if not _RUN_ID.match(run_id):
        raise _invalid(source, "expected runs:/<run_id>/<path> with a 32-character run id")
    relative = artifact_services.artifact_path_clean(relative)
    run = _active_run(user, run_id, source)
    location = _location(run.artifact_uri, relative, source)
    if relative and "/" not in relative and not _has_model_file(user, location):
        # MLflow 3 logs `name="model"` as a logged model next to the run, not into it: the
        # client finds it by name when loading runs:/<run>/model, and so does registration.
        logged = (
            tracking_selectors.logged_models_for_user(user)
            .filter(source_run=run, experiment_id=run.experiment_id, name=relative, lifecycle_stage=LifecycleStage.ACTIVE)
            .exclude(status=LoggedModelStatus.UPLOAD_FAILED)
            .select_related("experiment", "source_run")
            .order_by("-creation_timestamp_ms", "-pk")
            .first()
        )
        if logged is not None:
            return _from_logged_model(logged, "", source)
    return ResolvedSource(location, run, None)


def _has_model_file(user: User, location: str) -> bool:
    entries = artifact_services.artifact_list(user=user, path=store_path(location) or "")
    return any(entry.path == MODEL_FILE and not entry.is_dir for entry in entries)


def _artifacts_source(user: User, source: str, path: str) -> ResolvedSource:
    try:
        target = artifact_services.artifact_resolve(user=user, path=path, action=permissions.READ)
    except NotFound:
        raise _unresolved(source) from None
    guard = target.guard
    if isinstance(guard, LoggedModel):
        return _from_logged_model(_usable_logged_model(user, guard.pk, source), target.relative, source)
    run = _active_run(user, guard.pk, source)
    return ResolvedSource(_location(run.artifact_uri, target.relative, source), run, None)


def _models_source(user: User, source: str, path: str, model_id: str | None) -> ResolvedSource:
    from registry import selectors

    if _MODEL_ID.match(path):
        if not model_id:
            raise _invalid(source, "a models:/<model_id> source needs the same id in 'model_id'")
        return _from_logged_model(_usable_logged_model(user, path, source), "", source)
    name, _, suffix = path.partition("/")
    try:
        if not suffix and "@" in name:
            name, _, alias = name.rpartition("@")
            version = selectors.model_version_get_by_alias_for_user(user, name, alias)
        elif suffix.isdigit():
            version = selectors.model_version_get_for_user(user, name, suffix)
        elif suffix and "/" not in suffix:
            stages = None if suffix.lower() == "latest" else [suffix]
            latest = selectors.latest_versions_for_user(user, name, stages)
            if not latest:
                raise NotFound(f"no versions of '{name}' in '{suffix}'")
            version = max(latest, key=lambda v: v.version)
        else:
            raise _invalid(source, "expected models:/<model_id>, models:/<name>/<version> or models:/<name>@<alias>")
    except NotFound:
        raise _unresolved(source) from None
    if not version.storage_location:
        raise _invalid(source, f"{version} is a prompt version, which has no files")
    return ResolvedSource(version.storage_location, version.run, version.logged_model)


def prompt_source_resolve(
    *, source: str, model_tags: dict[str, str], version_tags: dict[str, str]
) -> ResolvedSource:
    """The source of a prompt version: no files at all, so nothing to resolve or to read.

    Accepted only for a registered model tagged as a prompt and a version carrying the
    prompt's text, which is how the client's prompt registry stores prompts.
    """
    if model_tags.get(PROMPT_MODEL_TAG, "").lower() != "true" or PROMPT_TEXT_TAG not in version_tags:
        raise _invalid(source, f"only prompt versions (a '{PROMPT_TEXT_TAG}' tag on a prompt) may use it")
    return ResolvedSource("", None, None)


def source_resolve(
    *, user: User, source: str, run_id: str | None = None, model_id: str | None = None
) -> ResolvedSource:
    """Resolve a new version's `source` to a location in the portal's store the user may read.

    Raises InvalidParameter for every source that is not one of the accepted forms, that
    names nothing the user can read, or that disagrees with `run_id` / `model_id`.
    """
    if not isinstance(source, str) or not source:
        raise InvalidParameter("Missing value for required parameter 'source'.")
    if len(source) > MAX_SOURCE_LENGTH:
        raise _invalid(source, f"longer than {MAX_SOURCE_LENGTH} characters")
    path_confine(source, lambda why: _invalid(source, why))
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme not in ("runs", "models", ARTIFACT_SCHEME):
        raise _invalid(source, f"only sources in this server's artifact store are accepted: {_ACCEPTED}")
    if parsed.netloc:
        raise _invalid(source, "a host is not allowed")
    path = parsed.path.strip("/")
    if parsed.scheme == "runs":
        resolved = _runs_source(user, source, path)
    elif parsed.scheme == ARTIFACT_SCHEME:
        resolved = _artifacts_source(user, source, path)
    else:
        resolved = _models_source(user, source, path, model_id)
    if run_id and (resolved.run is None or resolved.run.pk != run_id):
        raise _invalid(source, f"it is not in run '{run_id}'")
    if model_id and (resolved.logged_model is None or resolved.logged_model.pk != model_id):
        raise _invalid(source, f"it is not logged model '{model_id}'")
    return resolved


def version_source_resolve(
    *,
    user: User,
    registered_model: RegisteredModel,
    source: str,
    run_id: str | None = None,
    model_id: str | None = None,
    version_tags: dict[str, str] | None = None,
) -> ResolvedSource:
    """The source of a new version of `registered_model`: a prompt's placeholder, or files."""
    if source in PROMPT_SOURCES and not (run_id or model_id):
        model_tags = dict(
            RegisteredModelTag.objects.filter(registered_model=registered_model).values_list("key", "value")
        )
        return prompt_source_resolve(source=source, model_tags=model_tags, version_tags=version_tags or {})
    return source_resolve(user=user, source=source, run_id=run_id or None, model_id=model_id or None)
