"""Reads of tracking data, always narrowed to what the user may see (portal.permissions)."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.db import connections
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery

from portal import permissions
from portal.errors import InvalidParameter, NotFound
from tracking import run_pages, search
from tracking.models import (
    Comment,
    Experiment,
    ExperimentTag,
    InputTag,
    LatestMetric,
    LifecycleStage,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    Metric,
    Param,
    Run,
    RunInput,
    RunModelInput,
    RunModelOutput,
    RunTag,
)
from tracking.sql import InIds
from tracking.validation import normalize_experiment_name

VIEW_TYPES = {"ACTIVE_ONLY", "DELETED_ONLY", "ALL"}


def view_type_filter(queryset: QuerySet, view_type: str | None) -> QuerySet:
    view_type = (view_type or "ACTIVE_ONLY").upper()
    if view_type not in VIEW_TYPES:
        raise InvalidParameter(f"Invalid view type {view_type!r}: expected ACTIVE_ONLY, DELETED_ONLY or ALL.")
    if view_type == "ACTIVE_ONLY":
        return queryset.filter(lifecycle_stage=LifecycleStage.ACTIVE)
    if view_type == "DELETED_ONLY":
        return queryset.filter(lifecycle_stage=LifecycleStage.DELETED)
    return queryset


def parse_experiment_id(experiment_id: str | int | None) -> int | None:
    try:
        value = int(str(experiment_id).strip())
    except (TypeError, ValueError):
        return None
    return value if 0 <= value < 2**63 else None


def _experiment_not_found(experiment_id) -> NotFound:
    return NotFound(f"No Experiment with id={experiment_id} exists")


def experiments_for_user(user: AbstractBaseUser) -> QuerySet:
    return permissions.visible(user, Experiment.objects.all())


def experiment_get_for_user(user: AbstractBaseUser, experiment_id: str | int) -> Experiment:
    pk = parse_experiment_id(experiment_id)
    experiment = experiments_for_user(user).filter(pk=pk).first() if pk is not None else None
    if experiment is None:
        raise _experiment_not_found(experiment_id)
    return experiment


def experiment_lock_for_user(user: AbstractBaseUser, experiment_id: str | int) -> Experiment:
    """The experiment row, locked for update. Call inside a transaction."""
    pk = parse_experiment_id(experiment_id)
    experiment = experiments_for_user(user).select_for_update().filter(pk=pk).first() if pk is not None else None
    if experiment is None:
        raise _experiment_not_found(experiment_id)
    return experiment


def experiment_get_by_name_for_user(user: AbstractBaseUser, name: str) -> Experiment:
    message = f"Could not find experiment with name '{name}'"
    try:
        normalized = normalize_experiment_name(name)
    except InvalidParameter:
        raise NotFound(message) from None
    experiment = experiments_for_user(user).filter(name=normalized).first()
    if experiment is None:
        raise NotFound(message)
    return experiment


def experiment_tags(experiment_ids: Iterable[int]) -> dict[int, list[ExperimentTag]]:
    tags: dict[int, list[ExperimentTag]] = defaultdict(list)
    for tag in ExperimentTag.objects.filter(experiment_id__in=list(experiment_ids)).order_by("key"):
        tags[tag.experiment_id].append(tag)
    return tags


@dataclass
class ExperimentPage:
    experiments: list[Experiment]
    tags: dict[int, list["KeyValue"]]  # (key, value) pairs, not model instances
    next_page_token: str | None


def experiment_search_for_user(
    user: AbstractBaseUser,
    *,
    view_type: str | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> ExperimentPage:
    max_results = search.validate_max_results(max_results, default=1000, maximum=50000)
    queryset = view_type_filter(experiments_for_user(user), view_type)
    queryset = search.apply_experiment_filter(queryset, filter_string)
    queryset = search.apply_experiment_order(queryset, order_by)
    experiments, next_token = search.page_of(queryset, page_token, max_results)
    # Tags as plain (key, value) pairs: a page of 1,000 experiments has thousands, and a
    # model instance per tag was a third of the request.
    tags: dict[int, list[KeyValue]] = defaultdict(list)
    rows = ExperimentTag.objects.filter(experiment_id__in=[e.pk for e in experiments]).order_by("key")
    for experiment_id, key, value in rows.values_list("experiment_id", "key", "value"):
        tags[experiment_id].append(KeyValue(key, value))
    return ExperimentPage(experiments, tags, next_token)


# ---------------------------------------------------------------- runs


def _run_not_found(run_id: str) -> NotFound:
    return NotFound(f"Run with id={run_id} not found")


def runs_for_user(user: AbstractBaseUser) -> QuerySet:
    return permissions.visible(user, Run.objects.all())


def run_get_for_user(user: AbstractBaseUser, run_id: str) -> Run:
    run = permissions.visible_get(user, Run.objects.select_related("experiment"), pk=run_id) if run_id else None
    if run is None:
        raise _run_not_found(run_id)
    return run


def run_lock_for_user(user: AbstractBaseUser, run_id: str) -> Run:
    """The run row, locked for update, with its experiment. Call inside a transaction."""
    run = (
        runs_for_user(user).select_for_update(of=("self",)).select_related("experiment").filter(pk=run_id).first()
        if run_id
        else None
    )
    if run is None:
        raise _run_not_found(run_id)
    return run


class KeyValue(NamedTuple):
    """A param or tag as the doors show it (read-only; loaded without model instances)."""

    key: str
    value: str


class MetricPoint(NamedTuple):
    """A metric point or latest value as the doors show it (read-only). Reads return these
    rather than model instances: a page of runs holds thousands of them, a history 100,000,
    and building a Django model instance per row was most of those requests' time."""

    key: str
    value: float
    is_nan: bool
    timestamp: int
    step: int
    run_id: str | None = None


_POINT_FIELDS = ("key", "value", "is_nan", "timestamp", "step")


@dataclass
class RunData:
    """Everything the MLflow door shows of a run, loaded for many runs in a few queries."""

    run: Run
    params: list[KeyValue] = field(default_factory=list)
    tags: list[KeyValue] = field(default_factory=list)
    metrics: list[MetricPoint] = field(default_factory=list)
    dataset_inputs: list[tuple[RunInput, list[InputTag]]] = field(default_factory=list)
    model_inputs: list[str] = field(default_factory=list)
    model_outputs: list[RunModelOutput] = field(default_factory=list)


def _by_key(point) -> str:
    return point.key


def run_data_load(runs: list[Run], *, with_inputs: bool = True) -> list[RunData]:
    """Params, tags, latest metrics and inputs of `runs`: one query per kind, not per run.

    A page of 100 runs holds thousands of params, tags and metrics, so those are read as
    plain rows (_raw_rows); each run's values are sorted by key."""
    data = {run.pk: RunData(run) for run in runs}
    ids = list(data)
    if not ids:
        return []
    # Unordered: the database would sort every row of the page (17 ms for 1,000 runs);
    # each run's few keys are sorted here instead.
    params = Param.objects.filter(InIds(F("run_id"), ids)).values_list("run_id", "key", "value")
    for run_id, key, value in _raw_rows(params):
        data[run_id].params.append(KeyValue(key, value))
    tags = RunTag.objects.filter(InIds(F("run_id"), ids)).values_list("run_id", "key", "value")
    for run_id, key, value in _raw_rows(tags):
        data[run_id].tags.append(KeyValue(key, value))
    latest = LatestMetric.objects.filter(InIds(F("run_id"), ids)).values_list("run_id", *_POINT_FIELDS)
    for run_id, key, value, is_nan, timestamp, step in _raw_rows(latest):
        data[run_id].metrics.append(MetricPoint(key, value, is_nan, timestamp, step))
    for run_data in data.values():
        run_data.params.sort()
        run_data.tags.sort()
        run_data.metrics.sort(key=_by_key)
    if with_inputs:
        inputs = list(RunInput.objects.filter(InIds(F("run_id"), ids)).select_related("dataset").order_by("id"))
        input_tags: dict[int, list[InputTag]] = defaultdict(list)
        for tag in InputTag.objects.filter(InIds(F("run_input_id"), [i.pk for i in inputs])).order_by("key"):
            input_tags[tag.run_input_id].append(tag)
        for run_input in inputs:
            data[run_input.run_id].dataset_inputs.append((run_input, input_tags[run_input.pk]))
        for model_input in RunModelInput.objects.filter(InIds(F("run_id"), ids)).order_by("id"):
            data[model_input.run_id].model_inputs.append(model_input.model_id)
        for output in RunModelOutput.objects.filter(InIds(F("run_id"), ids)).order_by("id"):
            data[output.run_id].model_outputs.append(output)
    return [data[run.pk] for run in runs]


@dataclass
class RunPage:
    runs: list[RunData]
    next_page_token: str | None


def visible_in_experiments(user: AbstractBaseUser, queryset: QuerySet, experiment_ids: list[str]) -> QuerySet:
    """`queryset` (runs or logged models) narrowed to the experiments `experiment_ids` and to
    what the user may read there (a malformed id is INVALID_PARAMETER_VALUE; a missing or
    hidden experiment is left out, as MLflow's search does)."""
    ids = [parse_experiment_id(e) for e in experiment_ids]
    bad = [e for e, i in zip(experiment_ids, ids, strict=True) if i is None]
    if bad:
        raise InvalidParameter(f"Invalid experiment IDs: {bad}")
    return permissions.visible_under(user, queryset, ids)


def run_search_for_user(
    user: AbstractBaseUser,
    *,
    experiment_ids: list[str],
    filter_string: str | None = None,
    view_type: str | None = None,
    order_by: list[str] | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> RunPage:
    max_results = search.validate_max_results(max_results, default=1000, maximum=50000)
    queryset = view_type_filter(visible_in_experiments(user, Run.objects.all(), experiment_ids), view_type)
    queryset = search.apply_run_filter(queryset, filter_string)
    key = run_pages.search_key(sorted(map(str, experiment_ids)), filter_string or "", order_by or [], view_type or "")
    runs, next_token = run_pages.run_page(queryset, order_by, page_token, max_results, key)
    return RunPage(run_data_load(runs), next_token)


def _raw_rows(queryset: QuerySet) -> list[tuple]:
    """A values_list queryset's rows as the driver returns them, in one fetch: no per-row
    converters (SQLite's booleans stay 0/1) and no fetching in chunks of 100."""
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def metric_history_for_user(
    user: AbstractBaseUser, *, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
) -> tuple[list[tuple], str | None]:
    """A metric's full history, ordered by step then timestamp, paged with an offset token.

    Rows are plain (key, value, is_nan, timestamp, step) tuples, MetricPoint's fields in
    order (MetricPoint(*row) gives one): a page holds up to 25,000 of them."""
    run = run_get_for_user(user, run_id)
    queryset = (
        Metric.objects.filter(run_id=run.pk, key=key)
        .order_by("step", "timestamp", "value", "is_nan")
        .values_list(*_POINT_FIELDS)
    )
    offset = search.decode_page_token(page_token)
    if max_results is None:
        return _raw_rows(queryset[offset:] if offset else queryset), None
    if max_results < 1:
        raise InvalidParameter(f"Invalid value {max_results} for parameter 'max_results': must be at least 1.")
    return search.page_of(queryset, page_token, max_results, fetch=_raw_rows)


MAX_RUNS_BULK_INTERVAL = 100
MAX_RESULTS_PER_RUN = 2500


def _sample_indexes(count: int, max_results: int) -> list[int]:
    """Positions of at most `max_results` of `count` ordered items, spread evenly, always
    keeping the first and last."""
    if count <= max_results:
        return list(range(count))
    if max_results == 1:
        return [count - 1]
    last = count - 1
    return sorted({round(i * last / (max_results - 1)) for i in range(max_results)})


def _sample_steps(steps: list[int], max_results: int) -> list[int]:
    """At most `max_results` steps spread evenly over `steps`, always keeping the first and last."""
    return [steps[i] for i in _sample_indexes(len(steps), max_results)]


def _sampled_history_steps(history: QuerySet, max_results: int) -> tuple[list[int], bool]:
    """The steps of `history` sampled as _sample_steps does, and whether that is all of them.

    Steps are usually contiguous (0, 1, 2, ...): then one aggregate tells them all and the
    n-th distinct step is min + n, so a 100,000-point history is not read into Python to
    pick 320 steps. Otherwise the distinct steps are read.
    """
    bounds = history.aggregate(low=Min("step"), high=Max("step"), count=Count("step", distinct=True))
    count = bounds["count"] or 0
    if count and bounds["high"] - bounds["low"] + 1 == count:
        low = bounds["low"]
        return [low + i for i in _sample_indexes(count, max_results)], count <= max_results
    steps = list(history.order_by("step").values_list("step", flat=True).distinct())
    return _sample_steps(steps, max_results), len(steps) <= max_results


def metric_history_bulk_interval_for_user(
    user: AbstractBaseUser,
    *,
    run_ids: list[str],
    key: str,
    start_step: int | None = None,
    end_step: int | None = None,
    max_results: int | None = None,
) -> list[MetricPoint]:
    """A chart's view of one metric over several runs: per run, the points at up to
    `max_results` steps sampled evenly across the step range (first and last kept)."""
    if not run_ids:
        raise InvalidParameter("GetMetricHistoryBulkInterval request must specify at least one run_id.")
    if len(run_ids) > MAX_RUNS_BULK_INTERVAL:
        raise InvalidParameter(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_RUNS_BULK_INTERVAL} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    max_results = MAX_RESULTS_PER_RUN if max_results is None else max_results
    if not 1 <= max_results <= MAX_RESULTS_PER_RUN:
        raise InvalidParameter(f"max_results must be between 1 and {MAX_RESULTS_PER_RUN}.")
    if (start_step is None) != (end_step is None):
        raise InvalidParameter("If either start step or end step are specified, both must be specified.")
    if start_step is not None and start_step > end_step:
        raise InvalidParameter(
            f"end_step must be greater than start_step. Found start_step={start_step} and end_step={end_step}."
        )
    wanted = list(dict.fromkeys(run_ids))
    # One query tells which of the runs the user may read (not one per run).
    found = set(runs_for_user(user).filter(pk__in=wanted).values_list("pk", flat=True))
    missing = [run_id for run_id in wanted if run_id not in found]
    if missing:
        raise _run_not_found(missing[0])
    result: list[MetricPoint] = []
    for run_id in wanted:
        history = Metric.objects.filter(run_id=run_id, key=key)
        if start_step is not None:
            history = history.filter(step__gte=start_step, step__lte=end_step)
        sampled, everything = _sampled_history_steps(history, max_results)
        if not sampled:
            continue
        rows = history if everything else history.filter(step__in=sampled)
        for row in rows.order_by("step", "timestamp").values_list(*_POINT_FIELDS):
            result.append(MetricPoint(*row, run_id=run_id))
    return result


# ---------------------------------------------------------------- logged models


def _logged_model_not_found(model_id: str) -> NotFound:
    return NotFound(f"Logged model with ID '{model_id}' not found.")


def logged_models_for_user(user: AbstractBaseUser) -> QuerySet:
    return permissions.visible(user, LoggedModel.objects.all())


def _logged_model_lookup(user: AbstractBaseUser, model_id: str, queryset: QuerySet, allow_deleted: bool) -> LoggedModel:
    if not allow_deleted:
        queryset = queryset.filter(lifecycle_stage=LifecycleStage.ACTIVE)
    model = queryset.filter(pk=model_id).first() if isinstance(model_id, str) and model_id else None
    if model is None:
        raise _logged_model_not_found(model_id)
    return model


def logged_model_get_for_user(user: AbstractBaseUser, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
    """A logged model the user may read; a deleted one only with `allow_deleted` (as MLflow's get)."""
    return _logged_model_lookup(
        user, model_id, logged_models_for_user(user).select_related("experiment"), allow_deleted
    )


def logged_model_lock_for_user(user: AbstractBaseUser, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
    """The logged model row, locked for update, with its experiment. Call inside a transaction."""
    queryset = logged_models_for_user(user).select_for_update(of=("self",)).select_related("experiment")
    return _logged_model_lookup(user, model_id, queryset, allow_deleted)


@dataclass
class LoggedModelData:
    """Everything the MLflow door shows of a logged model, loaded for many models in a few queries."""

    model: LoggedModel
    params: list[LoggedModelParam] = field(default_factory=list)
    tags: list[LoggedModelTag] = field(default_factory=list)
    metrics: list[LoggedModelMetric] = field(default_factory=list)


def logged_model_data_load(models: list[LoggedModel]) -> list[LoggedModelData]:
    """Params, tags and metrics of `models`: one query per kind, not per model."""
    data = {model.pk: LoggedModelData(model) for model in models}
    ids = list(data)
    if not ids:
        return []
    for param in LoggedModelParam.objects.filter(model_id__in=ids).order_by("key"):
        data[param.model_id].params.append(param)
    for tag in LoggedModelTag.objects.filter(model_id__in=ids).order_by("key"):
        data[tag.model_id].tags.append(tag)
    for metric in LoggedModelMetric.objects.filter(model_id__in=ids).order_by("key", "step", "timestamp", "id"):
        data[metric.model_id].metrics.append(metric)
    return [data[model.pk] for model in models]


@dataclass
class LoggedModelPage:
    models: list[LoggedModelData]
    next_page_token: str | None


def logged_model_search_for_user(
    user: AbstractBaseUser,
    *,
    experiment_ids: list[str],
    filter_string: str | None = None,
    datasets: list[dict] | None = None,
    order_by: list[dict] | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> LoggedModelPage:
    """Active logged models of the given experiments that match MLflow's SearchLoggedModels
    filter, newest first unless `order_by` says otherwise, paged with an offset token."""
    max_results = search.validate_max_results(max_results, default=100, maximum=1000)
    if not experiment_ids:
        raise InvalidParameter("Missing value for required parameter 'experiment_ids'.")
    queryset = visible_in_experiments(user, LoggedModel.objects.all(), experiment_ids)
    queryset = queryset.filter(lifecycle_stage=LifecycleStage.ACTIVE)
    dataset_q = _logged_model_datasets_q(datasets)
    queryset = _logged_model_filter(queryset, filter_string, dataset_q)
    queryset = _logged_model_order(queryset, order_by)
    models, next_token = search.page_of(queryset, page_token, max_results)
    return LoggedModelPage(logged_model_data_load(models), next_token)


# SearchLoggedModels' attribute names (and their aliases) -> LoggedModel fields.
LOGGED_MODEL_ATTRIBUTES = {
    "name": "name",
    "model_id": "id",
    "model_type": "model_type",
    "status": "status",
    "source_run_id": "source_run_id",
    "creation_timestamp": "creation_timestamp_ms",
    "creation_time": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
    "last_updated_time": "last_updated_timestamp_ms",
}
LOGGED_MODEL_NUMERIC_FIELDS = {"creation_timestamp_ms", "last_updated_timestamp_ms"}


def _logged_model_datasets_q(datasets: list[dict] | None) -> Q | None:
    """Which LoggedModelMetric rows count for metric clauses: those on any of `datasets`."""
    if not datasets:
        return None
    combined = Q(pk__in=[])
    for dataset in datasets:
        name = dataset.get("dataset_name") if isinstance(dataset, dict) else None
        if not name or not isinstance(name, str):
            raise InvalidParameter("Each dataset of a logged model search needs a 'dataset_name'.")
        digest = dataset.get("dataset_digest")
        if digest is not None and not isinstance(digest, str):
            raise InvalidParameter(f"Invalid dataset_digest {digest!r}: expected a string.")
        clause = Q(dataset_name=name)
        if digest:
            clause &= Q(dataset_digest=digest)
        combined |= clause
    return combined


def _logged_model_metric_rows(key: str, dataset_q: Q | None) -> QuerySet:
    """The model's rows of metric `key` (NaN left out: it compares and sorts as nothing)."""
    rows = LoggedModelMetric.objects.filter(model_id=OuterRef("pk"), key=key, is_nan=False)
    return rows.filter(dataset_q) if dataset_q is not None else rows


def _logged_model_order(queryset: QuerySet, order_by: list[dict] | None) -> QuerySet:
    """Order by attributes or `metrics.<key>` (the latest value: highest step, then timestamp),
    then newest first; models without the metric come last."""
    ordering = []
    for i, item in enumerate(order_by or []):
        if not isinstance(item, dict):
            raise InvalidParameter("`order_by` must be a list of objects.")
        field_name = item.get("field_name")
        if not isinstance(field_name, str) or not field_name.strip():
            raise InvalidParameter("`field_name` in the `order_by` clause must be specified.")
        field_name = field_name.strip()
        ascending = item.get("ascending", True)
        if not isinstance(ascending, bool):
            raise InvalidParameter(f"Invalid value {ascending!r} for 'ascending' in the `order_by` clause.")
        dataset_name, dataset_digest = item.get("dataset_name"), item.get("dataset_digest")
        if "." in field_name:
            entity, key = field_name.split(".", 1)
            if entity != "metrics" or not key:
                raise InvalidParameter(f"Invalid order by field name: {entity}, only `metrics.<name>` is allowed.")
            if dataset_digest and not dataset_name:
                raise InvalidParameter("`dataset_digest` can only be specified if `dataset_name` is also specified.")
            dataset_q = None
            if dataset_name:
                dataset_q = _logged_model_datasets_q([{"dataset_name": dataset_name, "dataset_digest": dataset_digest}])
            alias = f"_order_metric_{i}"
            rows = _logged_model_metric_rows(key, dataset_q)
            latest = rows.order_by("-step", "-timestamp", "-id").values("value")[:1]
            queryset = queryset.annotate(**{alias: Subquery(latest)})
            expression = F(alias)
        else:
            if field_name not in LOGGED_MODEL_ATTRIBUTES:
                raise InvalidParameter(
                    f"Invalid order by field name: {field_name}. Expected one of "
                    f"{', '.join(sorted(LOGGED_MODEL_ATTRIBUTES))} or metrics.<name>."
                )
            if dataset_name or dataset_digest:
                raise InvalidParameter("`dataset_name` and `dataset_digest` may only be set to order by a metric.")
            expression = F(LOGGED_MODEL_ATTRIBUTES[field_name])
        ordering.append(expression.asc(nulls_last=True) if ascending else expression.desc(nulls_last=True))
    return queryset.order_by(*ordering, "-creation_timestamp_ms", "-id")




# Values a filter may give for `status`: the enum names, and the client's entity names.
_LOGGED_MODEL_STATUS_NAMES = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
    "UPLOAD_FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
_ATTRIBUTE_ENTITIES = {"attribute", "attributes", "attr"}
_METRIC_ENTITIES = {"metric", "metrics"}
_PARAM_ENTITIES = {"param", "params", "parameter", "parameters"}
_TAG_ENTITIES = {"tag", "tags"}


def logged_model_target(entity: str | None, key: str):
    """The resolver (tracking.search.parse_filter) for SearchLoggedModels filters:
    attributes (bare or `attributes.`), `metrics.<key>`, `params.<key>`, `tags.<key>`."""
    kind = entity.lower() if entity is not None else None
    if kind is None or kind in _ATTRIBUTE_ENTITIES:
        if key not in LOGGED_MODEL_ATTRIBUTES:
            raise LookupError(
                f"unknown logged model attribute '{key}' (expected one of "
                f"{', '.join(sorted(LOGGED_MODEL_ATTRIBUTES))}, or metrics.<key>, params.<key>, tags.<key>)"
            )
        if LOGGED_MODEL_ATTRIBUTES[key] in LOGGED_MODEL_NUMERIC_FIELDS:
            return search.Target("attribute", key, search.NUMERIC_COMPARATORS, "number")
        return search.Target("attribute", key, search.STRING_COMPARATORS | search.LIST_COMPARATORS)
    if kind in _METRIC_ENTITIES:
        return search.Target("metric", key, search.NUMERIC_COMPARATORS, "number")
    if kind in _PARAM_ENTITIES:
        return search.Target("param", key, search.STRING_COMPARATORS | search.NULL_COMPARATORS)
    if kind in _TAG_ENTITIES:
        return search.Target("tag", key, search.STRING_COMPARATORS | search.NULL_COMPARATORS)
    raise LookupError(
        f"unknown entity '{entity}' (expected metrics.<key>, params.<key>, tags.<key> or an attribute)"
    )


def _logged_model_attribute_q(key: str, comparator: str, value) -> Q:
    field_name = LOGGED_MODEL_ATTRIBUTES[key]
    if field_name in LOGGED_MODEL_NUMERIC_FIELDS:
        return search.integer_condition(field_name, comparator, value)
    if field_name == "status" and comparator in ("=", "!=", "IN", "NOT IN"):
        def canonical(v: str) -> str:
            return _LOGGED_MODEL_STATUS_NAMES.get(v.upper(), v)

        value = tuple(canonical(v) for v in value) if isinstance(value, tuple) else canonical(value)
    condition = search.string_condition(field_name, comparator, value)
    # A model without a source run or a type has no value to compare: like SQL's NULL, it
    # matches no clause on that attribute, not even `!=` (as MLflow).
    if field_name == "source_run_id":
        return Q(source_run_id__isnull=False) & condition
    if field_name == "model_type":
        return ~Q(model_type="") & condition
    return condition


def _logged_model_metric_q(key: str, comparator: str, value, dataset_q: Q | None) -> Q:
    """The model has a row of metric `key` (on one of the datasets, if given) that compares true."""
    rows = LoggedModelMetric.objects.filter(model_id=OuterRef("pk"), key=key)
    if dataset_q is not None:
        rows = rows.filter(dataset_q)
    number = float(value)
    if comparator == "!=":
        # NaN (stored with a placeholder value) differs from every number.
        return Q(Exists(rows.filter(~Q(value=number) | Q(is_nan=True))))
    lookup = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}[comparator]
    return Q(Exists(rows.filter(is_nan=False, **{f"value__{lookup}": number})))


def _logged_model_key_value_q(model, key: str, comparator: str, value) -> Q:
    rows = model.objects.filter(model_id=OuterRef("pk"), key=key)
    if comparator == "IS NULL":
        return Q(~Exists(rows))
    if comparator == "IS NOT NULL":
        return Q(Exists(rows))
    # `!=` needs the key with another value: a model without the key does not match (MLflow).
    return Q(Exists(rows.filter(search.string_condition("value", comparator, value))))


def _logged_model_filter(queryset: QuerySet, filter_string: str | None, dataset_q: Q | None) -> QuerySet:
    """`queryset` narrowed by a SearchLoggedModels filter, parsed with tracking.search's parser.

    Metric clauses count only metrics on the requested datasets. With datasets and no
    metric clause, a model must have some metric on one of the datasets (as MLflow).
    """
    comparisons = search.parse_filter(filter_string, logged_model_target)
    for c in comparisons:
        if c.kind == "metric":
            queryset = queryset.filter(_logged_model_metric_q(c.key, c.comparator, c.value, dataset_q))
        elif c.kind == "param":
            queryset = queryset.filter(_logged_model_key_value_q(LoggedModelParam, c.key, c.comparator, c.value))
        elif c.kind == "tag":
            queryset = queryset.filter(_logged_model_key_value_q(LoggedModelTag, c.key, c.comparator, c.value))
        else:
            queryset = queryset.filter(_logged_model_attribute_q(c.key, c.comparator, c.value))
    if dataset_q is not None and not any(c.kind == "metric" for c in comparisons):
        queryset = queryset.filter(Exists(LoggedModelMetric.objects.filter(dataset_q, model_id=OuterRef("pk"))))
    return queryset


# ---------------------------------------------------------------- comments


def comments_on(subject: Experiment | Run) -> QuerySet:
    """The comments on `subject`, oldest first: an experiment's own (not its runs'), or a
    run's. `subject` was fetched for the user through a selector (which checked READ)."""
    if isinstance(subject, Run):
        rows = Comment.objects.filter(experiment_id=subject.experiment_id, run=subject)
    else:
        rows = Comment.objects.filter(experiment=subject, run__isnull=True)
    return rows.select_related("author").order_by("id")


def comment_get_for_user(user: AbstractBaseUser, comment_id: int | str) -> Comment:
    """One comment on an experiment or run `user` may read; a hidden one is missing.

    Judged by what it is about, not by its experiment alone: in the Default experiment a
    run's creator reads the run (and its comments) without reading the experiment."""
    try:
        pk = int(comment_id)
    except (TypeError, ValueError):
        pk = None
    found = None
    if pk is not None and 0 < pk < 2**63 and permissions.is_active_user(user):
        found = Comment.objects.select_related("experiment", "run", "author").filter(pk=pk).first()
    if found is not None and found.run is not None:
        found.run.experiment = found.experiment  # the same row: a run's comment is kept on its experiment
    if found is None or not permissions.can(user, permissions.READ, found.subject):
        raise NotFound(f"Comment {comment_id} not found")
    return found
