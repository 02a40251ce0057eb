"""Reads of registry data, always narrowed to what the user may see (portal.permissions).

A model or version the user may not read is reported exactly like a missing one.
"""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from portal import permissions
from portal.errors import InvalidParameter, NotFound
from registry import validation
from registry.models import (
    Approval,
    Comment,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
    Stage,
    StageTransition,
    TransitionRequest,
)
from tracking.search import page_of, validate_max_results
from tracking.selectors import KeyValue

User = AbstractBaseUser | AnonymousUser


# ---------------------------------------------------------------- registered models


def _model_not_found(name: str) -> NotFound:
    return NotFound(f"Registered Model with name={name} not found")


def registered_models_for_user(user: User) -> QuerySet:
    return permissions.visible(user, RegisteredModel.objects.all())


def _model_lookup(user: User, name: str, queryset: QuerySet) -> RegisteredModel:
    lookup = validation.model_name_for_lookup(name)
    model = queryset.filter(name=lookup).first() if lookup is not None else None
    if model is None:
        raise _model_not_found(name)
    return model


def registered_model_get_for_user(user: User, name: str) -> RegisteredModel:
    if not name:
        raise InvalidParameter("Missing value for required parameter 'name'.")
    return _model_lookup(user, name, registered_models_for_user(user).select_related("owner"))


def registered_model_lock_for_user(user: User, name: str) -> RegisteredModel:
    """The registered model row, locked for update. Call inside a transaction.

    Services lock the model row before any of its versions, always in that order, so two
    changes to one model never wait on each other in opposite orders.
    """
    if not name:
        raise InvalidParameter("Missing value for required parameter 'name'.")
    return _model_lookup(user, name, registered_models_for_user(user).select_for_update())


# ---------------------------------------------------------------- versions


def _version_not_found(name: str, version: int | str) -> NotFound:
    return NotFound(f"Model Version (name={name}, version={version}) not found")


def model_versions_for_user(user: User) -> QuerySet:
    return permissions.visible(user, ModelVersion.objects.all())


def model_version_get_for_user(user: User, name: str, version: int | str) -> ModelVersion:
    number = validation.version_number_parse(version)
    model = registered_model_get_for_user(user, name)
    found = (
        model_versions_for_user(user)
        .select_related("registered_model", "owner")
        .filter(registered_model=model, version=number)
        .first()
    )
    if found is None:
        raise _version_not_found(name, number)
    return found


def model_version_lock(model: RegisteredModel, version: int | str) -> ModelVersion:
    """A version of `model` (which the caller has already fetched for the user), locked for update."""
    number = validation.version_number_parse(version)
    found = ModelVersion.objects.select_for_update().filter(registered_model=model, version=number).first()
    if found is None:
        raise _version_not_found(model.name, number)
    found.registered_model = model
    return found


def model_version_get_by_alias_for_user(user: User, name: str, alias: str) -> ModelVersion:
    model = registered_model_get_for_user(user, name)
    if not alias:
        raise InvalidParameter("Missing value for required parameter 'alias'.")
    found = (
        ModelAlias.objects.filter(registered_model=model, alias=alias)
        .select_related("model_version__registered_model", "model_version__owner")
        .first()
    )
    if found is None:
        raise NotFound(f"Registered model alias {alias} not found.")
    return found.model_version


def latest_versions_for_user(user: User, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
    """The latest version in each of `stages` (every stage when none are given), by stage order."""
    model = registered_model_get_for_user(user, name)
    wanted = [validation.stage_parse(s) for s in stages] if stages else list(Stage)
    return latest_versions_of_models([model.pk], wanted)[model.pk]


def latest_versions_of_models(model_ids: list[int], stages: list[str] | None = None) -> dict[int, list[ModelVersion]]:
    """For each model, its latest version per stage, in `stages` order (two queries for any number of models)."""
    return _latest_versions(model_ids, stages)


def _latest_version_ids(model_ids: list[int], stages: list[str]) -> list[int]:
    """Ids of the newest version in each of `stages` of each model.

    One probe of the model_version_stage index per model and stage (the first entry from
    its end), so the cost does not grow with the number of versions a model has.
    """
    probes = {
        f"latest_{i}": Subquery(
            ModelVersion.objects.filter(registered_model_id=OuterRef("pk"), current_stage=stage)
            .order_by("-version")
            .values("pk")[:1]
        )
        for i, stage in enumerate(stages)
    }
    rows = RegisteredModel.objects.filter(pk__in=model_ids).annotate(**probes).values_list(*probes)
    return [pk for row in rows for pk in row if pk is not None]


def _latest_versions(
    model_ids: list[int], stages: list[str] | None, models: dict[int, RegisteredModel] | None = None
) -> dict[int, list[ModelVersion]]:
    """latest_versions_of_models. With `models` (the models by id, already loaded) the
    versions get those instances, and their owners where they are the same users, rather
    than loading them again."""
    wanted = list(dict.fromkeys(stages)) if stages else list(Stage)
    result: dict[int, list[ModelVersion]] = {pk: [] for pk in model_ids}
    if not model_ids:
        return result
    versions = ModelVersion.objects.filter(pk__in=_latest_version_ids(model_ids, wanted))
    versions = list(versions if models else versions.select_related("registered_model"))
    known = {}
    for model in (models or {}).values():
        if model.owner_id is not None and RegisteredModel.owner.is_cached(model):
            known[model.owner_id] = model.owner
    _attach_owners(versions, known)
    order = {stage: i for i, stage in enumerate(wanted)}
    for version in versions:
        if models:
            version.registered_model = models[version.registered_model_id]
        result[version.registered_model_id].append(version)
    for found in result.values():
        found.sort(key=lambda v: order[v.current_stage])
    return result


def model_version_download_uri_for_user(user: User, name: str, version: int | str) -> str:
    """Where the version's files are: an `mlflow-artifacts:/` location of the portal's own store.

    Downloading from it goes through the artifact proxy, which lets the version's readers
    read those files (version_files_readable) without any grant on the run's experiment.
    """
    found = model_version_get_for_user(user, name, version)
    if not found.storage_location:
        raise InvalidParameter(f"{found} is a prompt version: it has no files to download.")
    return found.storage_location


# ---------------------------------------------------------------- loading for output


def _attach_owners(rows: list, known: dict | None = None) -> None:
    """Give each row its `owner`: from `known` (users by id, already loaded), the others
    from one query for the distinct owners. A join would build a user instance per row,
    and a page has hundreds of rows and a handful of owners."""
    owners = dict(known or {})
    missing = {row.owner_id for row in rows if row.owner_id is not None} - owners.keys()
    if missing:
        owners.update(get_user_model().objects.in_bulk(missing))
    for row in rows:
        if row.owner_id is not None:
            row.owner = owners.get(row.owner_id)  # None: the user was deleted meanwhile


@dataclass
class ModelVersionData:
    """Everything the MLflow door shows of a version, loaded for many versions in a few queries.

    Tags are (key, value) pairs, by key; aliases are names, sorted.
    """

    version: ModelVersion
    tags: list[KeyValue] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


def model_version_data_load(versions: list[ModelVersion]) -> list[ModelVersionData]:
    return _version_data(versions)


def _version_data(versions: list[ModelVersion], aliases: list[tuple[int, str]] | None = None) -> list[ModelVersionData]:
    """model_version_data_load; `aliases`, when given, are (version id, name) of every
    alias of the versions' models, by name, so they need no query of their own."""
    data = {v.pk: ModelVersionData(v) for v in versions}
    if not data:
        return []
    ids = list(data)
    # Plain rows rather than model instances: a page of versions has hundreds of tags.
    tags = ModelVersionTag.objects.filter(model_version_id__in=ids).order_by("key")
    for version_id, key, value in tags.values_list("model_version_id", "key", "value"):
        data[version_id].tags.append(KeyValue(key, value))
    if aliases is None:
        rows = ModelAlias.objects.filter(model_version_id__in=ids).order_by("alias")
        aliases = rows.values_list("model_version_id", "alias")
    for version_id, alias in aliases:
        if version_id in data:
            data[version_id].aliases.append(alias)
    return [data[v.pk] for v in versions]


@dataclass
class RegisteredModelData:
    """A registered model with its tags ((key, value) pairs, by key), its aliases (by
    name, each with its version's number loaded) and its latest version per stage."""

    model: RegisteredModel
    tags: list[KeyValue] = field(default_factory=list)
    aliases: list[ModelAlias] = field(default_factory=list)
    latest_versions: list[ModelVersionData] = field(default_factory=list)


def registered_model_data_load(models: list[RegisteredModel]) -> list[RegisteredModelData]:
    """Tags, aliases and latest versions per stage of `models`: five queries for any number
    of models (six when the versions' owners are not the models' owners)."""
    data = {m.pk: RegisteredModelData(m) for m in models}
    if not data:
        return []
    ids = list(data)
    tags = RegisteredModelTag.objects.filter(registered_model_id__in=ids).order_by("key")
    for model_id, key, value in tags.values_list("registered_model_id", "key", "value"):
        data[model_id].tags.append(KeyValue(key, value))
    aliases = list(
        ModelAlias.objects.filter(registered_model_id__in=ids)
        .select_related("model_version")
        .only("registered_model_id", "alias", "model_version__version")
        .order_by("alias")
    )
    for alias in aliases:
        data[alias.registered_model_id].aliases.append(alias)
    latest = _latest_versions(ids, None, {pk: d.model for pk, d in data.items()})
    # An alias points at a version of its own model, so the models' aliases are all the
    # latest versions can have.
    pairs = [(alias.model_version_id, alias.alias) for alias in aliases]
    loaded = {d.version.pk: d for d in _version_data([v for found in latest.values() for v in found], pairs)}
    for model_id, found in latest.items():
        data[model_id].latest_versions = [loaded[v.pk] for v in found]
    return [data[m.pk] for m in models]


# ---------------------------------------------------------------- search


@dataclass
class RegisteredModelPage:
    models: list[RegisteredModelData]
    next_page_token: str | None


@dataclass
class ModelVersionPage:
    versions: list[ModelVersionData]
    next_page_token: str | None


def registered_model_search_for_user(
    user: User,
    *,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> RegisteredModelPage:
    from registry import search

    max_results = validate_max_results(max_results, default=100, maximum=1000)
    queryset = search.registered_model_filter(registered_models_for_user(user).select_related("owner"), filter_string)
    queryset = search.registered_model_order(queryset, order_by)
    rows, next_token = page_of(queryset, page_token, max_results)
    return RegisteredModelPage(registered_model_data_load(rows), next_token)


def model_version_search_for_user(
    user: User,
    *,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> ModelVersionPage:
    from registry import search

    max_results = validate_max_results(max_results, default=10000, maximum=200_000)
    # Ordered by the model's name, the search reads the models first (by name) and the
    # versions of each: the name condition and the permission test (one probe per model) go
    # on the models as they are read. Otherwise it reads the versions in order, and both are
    # tested per version against sets computed once (portal.permissions.visible_rows).
    models_first = search.model_version_order_leads_with_name(order_by)
    queryset = ModelVersion.objects.select_related("registered_model")
    queryset = search.model_version_filter(queryset, filter_string, models_first=models_first)
    queryset = search.model_version_order(queryset, order_by)
    queryset = permissions.visible(user, queryset) if models_first else permissions.visible_rows(user, queryset)
    rows, next_token = page_of(queryset, page_token, max_results)
    _attach_owners(rows)
    return ModelVersionPage(model_version_data_load(rows), next_token)


# ---------------------------------------------------------------- history, comments, lineage


def stage_history_for_user(user: User, name: str, version: int | str | None = None) -> list[StageTransition]:
    """Stage changes of a model (or of one version), oldest first, with their actors."""
    model = registered_model_get_for_user(user, name)
    history = StageTransition.objects.filter(registered_model=model).select_related("actor")
    if version is not None:
        history = history.filter(version_number=validation.version_number_parse(version))
    return list(history.order_by("id"))


def comments_on(subject: RegisteredModel | ModelVersion | TransitionRequest) -> QuerySet:
    """The comments on `subject`, oldest first: a model's own (not its versions' or its
    requests'), a version's, or a request's. `subject` was fetched for the user through a
    selector (which checked READ)."""
    if isinstance(subject, TransitionRequest):
        rows = Comment.objects.filter(transition_request=subject)
    elif isinstance(subject, ModelVersion):
        rows = Comment.objects.filter(registered_model_id=subject.registered_model_id, model_version=subject)
    else:
        rows = Comment.objects.filter(
            registered_model=subject, model_version__isnull=True, transition_request__isnull=True
        )
    return rows.select_related("author").order_by("created_at", "id")


def comments_for_user(user: User, name: str, version: int | str | None = None) -> list[Comment]:
    """Comments on a model (version None: the model's own, not its versions') or on one version."""
    if version is None:
        return list(comments_on(registered_model_get_for_user(user, name)))
    return list(comments_on(model_version_get_for_user(user, name, version)))


def comments_of_request_for_user(user: User, request_id: int) -> list[Comment]:
    return list(comments_on(transition_request_get_for_user(user, request_id)))


def comment_get_for_user(user: User, comment_id: int) -> Comment:
    not_found = f"Comment {comment_id} not found"
    comment = (
        permissions.visible(user, Comment.objects.select_related("registered_model")).filter(pk=comment_id).first()
        if isinstance(comment_id, int)
        else None
    )
    if comment is None:
        raise NotFound(not_found)
    return comment


@dataclass
class Lineage:
    """Where a version came from: its run (with params, metrics, tags), experiment and logged model.

    Parts the user may not read are left out (None), as if they were not there.
    """

    version: ModelVersion
    run: object | None = None  # tracking.selectors.RunData
    experiment: object | None = None  # tracking.models.Experiment
    logged_model: object | None = None  # tracking.selectors.LoggedModelData


def model_version_lineage_for_user(user: User, name: str, version: int | str) -> Lineage:
    from tracking import selectors as tracking_selectors

    found = model_version_get_for_user(user, name, version)
    lineage = Lineage(found)
    if found.run_id:
        try:
            run = tracking_selectors.run_get_for_user(user, found.run_id)
        except NotFound:
            run = None
        if run is not None:
            lineage.run = tracking_selectors.run_data_load([run])[0]
            lineage.experiment = run.experiment
    if found.logged_model_id:
        try:
            logged_model = tracking_selectors.logged_model_get_for_user(user, found.logged_model_id, allow_deleted=True)
        except NotFound:
            logged_model = None
        if logged_model is not None:
            lineage.logged_model = tracking_selectors.logged_model_data_load([logged_model])[0]
            lineage.experiment = lineage.experiment or logged_model.experiment
    return lineage


def version_files_readable(user: User, locations: list[str]) -> bool:
    """Is one of `locations` (artifact-store URIs) the storage location of a version `user`
    may read? A registered model's readers may load its versions' files without any grant
    on the experiment they came from (tracking.services.artifacts asks this)."""
    return permissions.visible(user, ModelVersion.objects.filter(storage_location__in=locations)).exists()


# ---------------------------------------------------------------- transition requests


def transition_requests_visible(user: User) -> QuerySet:
    """Requests on models `user` may read, with what a listing shows."""
    return permissions.visible(
        user,
        TransitionRequest.objects.select_related("registered_model", "requester", "model_version").prefetch_related(
            Prefetch("decisions", queryset=Approval.objects.select_related("reviewer").order_by("id"))
        ),
    )


def transition_request_get_for_user(user: User, request_id: int | str) -> TransitionRequest:
    """One request on a model `user` may read; a hidden one is missing (NotFound)."""
    try:
        pk = int(request_id)
    except (TypeError, ValueError):
        pk = None
    found = transition_requests_visible(user).filter(pk=pk).first() if pk is not None and pk > 0 else None
    if found is None:
        raise NotFound(f"Transition request {request_id} not found")
    return found


def transition_requests_for_user(
    user: User,
    *,
    state: str | None = None,
    model_name: str | None = None,
    version: int | str | None = None,
    mine: bool = False,
) -> QuerySet:
    """Requests `user` may see, newest first, narrowed by state, model (and version), or
    to the user's own. "To decide" needs the policy, so it is a filter over this
    (registry.services.policies.may_decide)."""
    rows = transition_requests_visible(user)
    if state:
        if state not in TransitionRequest.State.values:
            raise InvalidParameter(
                f"Unknown state '{state}'. States are {', '.join(TransitionRequest.State.values)}."
            )
        rows = rows.filter(state=state)
    if model_name is not None:
        model = registered_model_get_for_user(user, model_name)
        rows = rows.filter(registered_model=model)
        if version is not None:
            rows = rows.filter(version_number=validation.version_number_parse(version))
    if mine:
        rows = rows.filter(requester_id=user.pk)
    return rows.order_by("-id")


def stage_requests_of_version_for_user(
    user: User,
    name: str,
    version: int | str,
    *,
    states: tuple[str, ...] = (TransitionRequest.State.PENDING,),
    stage: str | None = None,
    requester: str | None = None,
) -> QuerySet:
    """Stage-transition requests of one version (in `states`, to `stage`, by the user named
    `requester`), newest first. Databricks' API names a request by its version, target
    stage and creator rather than by id. An unknown or hidden version is NotFound."""
    found = model_version_get_for_user(user, name, version)
    rows = transition_requests_visible(user).filter(
        model_version=found, action=TransitionRequest.Action.TRANSITION_STAGE, state__in=states
    )
    if stage is not None:
        rows = rows.filter(target=validation.stage_parse(stage))
    if requester is not None:
        rows = rows.filter(requester__username=requester)
    return rows.order_by("-id")
