"""Reads of tracking data, always narrowed to what the user may see (portal.permissions)."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from portal import permissions
from portal.errors import InvalidParameter, NotFound
from tracking.models import (
    Experiment,
    ExperimentTag,
    InputTag,
    LatestMetric,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunInput,
    RunModelInput,
    RunModelOutput,
    RunTag,
)
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
    permissions.require(user, permissions.READ, experiment, not_found=str(_experiment_not_found(experiment_id)))
    return experiment


def experiment_lock_for_user(user: AbstractBaseUser, experiment_id: str | int) -> Experiment:
    """The experiment row, locked for update. Call inside a transaction."""
    pk = parse_experiment_id(experiment_id)
    experiment = experiments_for_user(user).select_for_update().filter(pk=pk).first() if pk is not None else None
    if experiment is None:
        raise _experiment_not_found(experiment_id)
    permissions.require(user, permissions.READ, experiment, not_found=str(_experiment_not_found(experiment_id)))
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
    permissions.require(user, permissions.READ, experiment, not_found=message)
    return experiment


def experiment_tags(experiment_ids: Iterable[int]) -> dict[int, list[ExperimentTag]]:
    tags: dict[int, list[ExperimentTag]] = defaultdict(list)
    for tag in ExperimentTag.objects.filter(experiment_id__in=list(experiment_ids)).order_by("key"):
        tags[tag.experiment_id].append(tag)
    return tags


@dataclass
class ExperimentPage:
    experiments: list[Experiment]
    tags: dict[int, list[ExperimentTag]]
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
    from tracking import search

    max_results = search.validate_max_results(max_results, default=1000, maximum=50000)
    queryset = view_type_filter(experiments_for_user(user), view_type)
    queryset = search.apply_experiment_filter(queryset, filter_string)
    queryset = search.apply_experiment_order(queryset, order_by)
    offset = search.decode_page_token(page_token)
    rows = list(queryset[offset : offset + max_results + 1])
    next_token = search.encode_page_token(offset + max_results) if len(rows) > max_results else None
    experiments = rows[:max_results]
    return ExperimentPage(experiments, experiment_tags(e.pk for e in experiments), next_token)


# ---------------------------------------------------------------- runs


def _run_not_found(run_id: str) -> NotFound:
    return NotFound(f"Run with id={run_id} not found")


def runs_for_user(user: AbstractBaseUser) -> QuerySet:
    return permissions.visible(user, Run.objects.all())


def run_get_for_user(user: AbstractBaseUser, run_id: str) -> Run:
    run = runs_for_user(user).select_related("experiment").filter(pk=run_id).first() if run_id else None
    if run is None:
        raise _run_not_found(run_id)
    permissions.require(user, permissions.READ, run, not_found=str(_run_not_found(run_id)))
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
    permissions.require(user, permissions.READ, run, not_found=str(_run_not_found(run_id)))
    return run


@dataclass
class RunData:
    """Everything the MLflow door shows of a run, loaded for many runs in a few queries."""

    run: Run
    params: list[Param] = field(default_factory=list)
    tags: list[RunTag] = field(default_factory=list)
    metrics: list[LatestMetric] = field(default_factory=list)
    dataset_inputs: list[tuple[RunInput, list[InputTag]]] = field(default_factory=list)
    model_inputs: list[str] = field(default_factory=list)
    model_outputs: list[RunModelOutput] = field(default_factory=list)


def run_data_load(runs: list[Run], *, with_inputs: bool = True) -> list[RunData]:
    """Params, tags, latest metrics and inputs of `runs`: one query per kind, not per run."""
    data = {run.pk: RunData(run) for run in runs}
    ids = list(data)
    if not ids:
        return []
    for param in Param.objects.filter(run_id__in=ids).order_by("key"):
        data[param.run_id].params.append(param)
    for tag in RunTag.objects.filter(run_id__in=ids).order_by("key"):
        data[tag.run_id].tags.append(tag)
    for metric in LatestMetric.objects.filter(run_id__in=ids).order_by("key"):
        data[metric.run_id].metrics.append(metric)
    if with_inputs:
        inputs = list(RunInput.objects.filter(run_id__in=ids).select_related("dataset").order_by("id"))
        input_tags: dict[int, list[InputTag]] = defaultdict(list)
        for tag in InputTag.objects.filter(run_input__in=[i.pk for i in inputs]).order_by("key"):
            input_tags[tag.run_input_id].append(tag)
        for run_input in inputs:
            data[run_input.run_id].dataset_inputs.append((run_input, input_tags[run_input.pk]))
        for model_input in RunModelInput.objects.filter(run_id__in=ids).order_by("id"):
            data[model_input.run_id].model_inputs.append(model_input.model_id)
        for output in RunModelOutput.objects.filter(run_id__in=ids).order_by("id"):
            data[output.run_id].model_outputs.append(output)
    return [data[run.pk] for run in runs]


@dataclass
class RunPage:
    runs: list[RunData]
    next_page_token: str | None


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
    from tracking import search

    max_results = search.validate_max_results(max_results, default=1000, maximum=50000)
    ids = [parse_experiment_id(e) for e in experiment_ids]
    if any(i is None for i in ids):
        bad = [e for e, i in zip(experiment_ids, ids) if i is None]
        raise InvalidParameter(f"Invalid experiment IDs: {bad}")
    visible_ids = list(experiments_for_user(user).filter(pk__in=ids).values_list("pk", flat=True))
    queryset = view_type_filter(runs_for_user(user).filter(experiment_id__in=visible_ids), view_type)
    queryset = search.apply_run_filter(queryset, filter_string)
    queryset = search.apply_run_order(queryset, order_by)
    offset = search.decode_page_token(page_token)
    rows = list(queryset[offset : offset + max_results + 1])
    next_token = search.encode_page_token(offset + max_results) if len(rows) > max_results else None
    return RunPage(run_data_load(rows[:max_results]), next_token)


def metric_history_for_user(
    user: AbstractBaseUser, *, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
) -> tuple[list[Metric], str | None]:
    """A metric's full history, ordered by step then timestamp, paged with a keyset token."""
    from tracking import search

    run = run_get_for_user(user, run_id)
    queryset = Metric.objects.filter(run_id=run.pk, key=key).order_by("step", "timestamp", "value", "is_nan")
    offset = search.decode_page_token(page_token)
    if max_results is None:
        return list(queryset[offset:]) if offset else list(queryset), None
    if max_results < 1:
        raise InvalidParameter(f"Invalid value {max_results} for parameter 'max_results': must be at least 1.")
    rows = list(queryset[offset : offset + max_results + 1])
    next_token = search.encode_page_token(offset + max_results) if len(rows) > max_results else None
    return rows[:max_results], next_token


MAX_RUNS_BULK_INTERVAL = 100
MAX_RESULTS_PER_RUN = 2500


def _sample_steps(steps: list[int], max_results: int) -> list[int]:
    """At most `max_results` steps spread evenly over `steps`, always keeping the first and last."""
    if len(steps) <= max_results:
        return steps
    if max_results == 1:
        return [steps[-1]]
    last = len(steps) - 1
    picked = {round(i * last / (max_results - 1)) for i in range(max_results)}
    return [steps[i] for i in sorted(picked)]


def metric_history_bulk_interval_for_user(
    user: AbstractBaseUser,
    *,
    run_ids: list[str],
    key: str,
    start_step: int | None = None,
    end_step: int | None = None,
    max_results: int | None = None,
) -> list[Metric]:
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
    result: list[Metric] = []
    for run_id in dict.fromkeys(run_ids):
        run = run_get_for_user(user, run_id)
        history = Metric.objects.filter(run_id=run.pk, key=key)
        if start_step is not None:
            history = history.filter(step__gte=start_step, step__lte=end_step)
        steps = list(history.order_by("step").values_list("step", flat=True).distinct())
        sampled = _sample_steps(steps, max_results)
        if not sampled:
            continue
        if len(sampled) == len(steps):
            rows = history.order_by("step", "timestamp")
        else:
            rows = history.filter(step__in=sampled).order_by("step", "timestamp")
        for metric in rows:
            metric.run_id = run.pk
            result.append(metric)
    return result
