"""Run services: create, update, delete, and everything logged to a run.

Logging is the hot path: a log-batch of 1000 metrics is validated in Python, then written
with a handful of set-based statements (bulk insert of history, one upsert of the latest
values), inside one short transaction: all or nothing.
"""

import random
import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction

from portal import permissions
from portal.errors import InvalidParameter, NotFound
from tracking.models import (
    Dataset,
    Experiment,
    InputTag,
    LifecycleStage,
    LoggedModel,
    LoggedModelMetric,
    Param,
    Run,
    RunInput,
    RunModelInput,
    RunModelOutput,
    RunStatus,
    RunTag,
)
from tracking.selectors import experiment_get_for_user, logged_model_get_for_user, run_get_for_user, run_lock_for_user
from tracking.services.immutable_params import params_insert_immutable
from tracking.validation import (
    INT64_MAX,
    INT64_MIN,
    MAX_DATASET_DIGEST_SIZE,
    MAX_DATASET_NAME_SIZE,
    MAX_DATASET_PROFILE_SIZE,
    MAX_DATASET_SCHEMA_SIZE,
    MAX_DATASET_SOURCE_SIZE,
    MAX_INPUT_TAG_KEY_SIZE,
    MAX_INPUT_TAG_VALUE_SIZE,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_RUN_NAME_LENGTH,
    now_ms,
    validate_int64,
    validate_key,
    validate_logged_model_id,
    validate_metric_value,
    validate_params,
    validate_tags,
    validate_text,
)

RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"

_ADJECTIVES = (
    "bright calm clever bold brave eager gentle happy jolly kind lively merry nimble polite proud quick quiet "
    "sharp shy silent sleek smooth sunny swift tidy vivid warm wise witty zesty amber"
).split()
_NOUNS = (
    "ant bat bear bee cat colt crab crow deer dog dove duck eel elk finch fox frog goat gull hare hawk horse "
    "lark lion lynx mole moth newt owl ram seal slug snake swan toad trout wasp whale wolf wren yak"
).split()


def random_run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(100, 999)}"


def _require_active_run(run: Run) -> None:
    if run.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter(f"The run {run.pk} must be in the 'active' state. Current state is {run.lifecycle_stage}.")


def _run_for_write(
    actor: AbstractBaseUser, run_id: str, *, lock: bool = False, action: str = permissions.EDIT
) -> Run:
    run = run_lock_for_user(actor, run_id) if lock else run_get_for_user(actor, run_id)
    permissions.require(actor, action, run)
    return run


def _logged_models_for_write(actor: AbstractBaseUser, run: Run, model_ids: set[str]) -> dict[str, LoggedModel]:
    """The logged models `model_ids` of the run's experiment, each one the actor may edit.

    A request that names a model (a metric's model_id, a run output) writes onto it, so the
    model is checked for that, not only the run the request addresses.
    """
    models = {
        model.pk: model
        for model in LoggedModel.objects.filter(pk__in=model_ids, experiment_id=run.experiment_id).select_related(
            "experiment"
        )
    }
    for model_id in sorted(model_ids):
        model = models.get(model_id)
        not_found = f"Logged model with ID '{model_id}' not found in experiment {run.experiment_id}."
        if model is None:
            raise NotFound(not_found)
        permissions.require(actor, permissions.EDIT, model, not_found=not_found)
    return models


def _parent_run_check(actor: AbstractBaseUser, tags: dict[str, str]) -> None:
    """A parent run named by the `mlflow.parentRunId` tag must be one the actor may read."""
    parent_id = tags.get(PARENT_RUN_TAG)
    if parent_id:
        run_get_for_user(actor, parent_id)


# ---------------------------------------------------------------- lifecycle


@transaction.atomic
def run_create(
    *,
    actor: AbstractBaseUser,
    experiment_id: str | None,
    run_name: str | None = None,
    start_time: Any = None,
    tags: list[dict] | None = None,
    user_id: str | None = None,
) -> Run:
    """Create a RUNNING run in an active experiment the actor may add runs to.

    The run's user is the actor. `user_id` (which the client sends, from the machine's login
    name) is accepted and ignored: a run must not claim someone else as its user, for
    `attributes.user_id = '...'` searches.
    """
    experiment = experiment_get_for_user(actor, experiment_id if experiment_id not in (None, "") else Experiment.DEFAULT_ID)
    permissions.require_add_child(actor, experiment)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter(
            f"The experiment {experiment.pk} must be in the 'active' state. Current state is {experiment.lifecycle_stage}."
        )
    tag_values = validate_tags(tags)
    _parent_run_check(actor, tag_values)
    tag_name = tag_values.get(RUN_NAME_TAG)
    if run_name and tag_name and run_name != tag_name:
        raise InvalidParameter(
            f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
            f"(run_name='{run_name}', mlflow.runName='{tag_name}')."
        )
    name = validate_text(run_name or tag_name or random_run_name(), "run", "run_name", MAX_RUN_NAME_LENGTH)
    tag_values[RUN_NAME_TAG] = name
    run_id = uuid.uuid4().hex
    start = validate_int64(start_time, "start_time", minimum=0)
    run = Run.objects.create(
        id=run_id,
        experiment=experiment,
        name=name,
        owner=actor,
        user_id=actor.get_username()[:256],
        status=RunStatus.RUNNING,
        start_time=start if start is not None else now_ms(),
        artifact_uri=f"{experiment.artifact_location.rstrip('/')}/{run_id}/artifacts",
    )
    RunTag.objects.bulk_create(
        [RunTag(run=run, experiment=experiment, key=k, value=v) for k, v in tag_values.items()]
    )
    return run


@transaction.atomic
def run_update(
    *, actor: AbstractBaseUser, run_id: str, status: str | None = None, end_time: Any = None, run_name: str | None = None
) -> Run:
    run = _run_for_write(actor, run_id, lock=True)
    _require_active_run(run)
    fields = []
    if status:
        if status not in RunStatus.values:
            raise InvalidParameter(f"Invalid run status {status!r}: expected one of {', '.join(RunStatus.values)}.")
        run.status = status
        fields.append("status")
    end = validate_int64(end_time, "end_time", minimum=0)
    if end is not None:
        run.end_time = end
        fields.append("end_time")
    if run_name:
        run.name = validate_text(run_name, "run", "run_name", MAX_RUN_NAME_LENGTH)
        fields.append("name")
        RunTag.objects.update_or_create(
            run=run, key=RUN_NAME_TAG, defaults={"value": run.name, "experiment_id": run.experiment_id}
        )
    if fields:
        run.save(update_fields=fields)
    return run


@transaction.atomic
def run_delete(*, actor: AbstractBaseUser, run_id: str) -> Run:
    """Mark a run deleted (restorable). Idempotent."""
    run = _run_for_write(actor, run_id, lock=True, action=permissions.MANAGE)
    if run.lifecycle_stage != LifecycleStage.DELETED:
        run.lifecycle_stage = LifecycleStage.DELETED
        run.deleted_time = now_ms()
        run.save(update_fields=["lifecycle_stage", "deleted_time"])
    return run


@transaction.atomic
def run_restore(*, actor: AbstractBaseUser, run_id: str) -> Run:
    run = _run_for_write(actor, run_id, lock=True, action=permissions.MANAGE)
    if run.experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter(f"Cannot restore run {run.pk}: its experiment {run.experiment_id} is deleted.")
    if run.lifecycle_stage != LifecycleStage.ACTIVE:
        run.lifecycle_stage = LifecycleStage.ACTIVE
        run.deleted_time = None
        run.save(update_fields=["lifecycle_stage", "deleted_time"])
    return run


# ---------------------------------------------------------------- logging


class MetricPoint:
    """One validated metric point. NaN is stored as is_nan with value 0 (SQLite cannot store NaN)."""

    __slots__ = ("key", "value", "is_nan", "stored_value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest")

    def __init__(self, key, value, timestamp, step, model_id=None, dataset_name=None, dataset_digest=None):
        self.key = key
        self.value = value
        self.is_nan = value != value
        self.stored_value = 0.0 if self.is_nan else value
        self.timestamp = timestamp
        self.step = step
        self.model_id = model_id
        self.dataset_name = dataset_name
        self.dataset_digest = dataset_digest


def _validated_metrics(metrics: list[dict]) -> list[MetricPoint]:
    points = []
    keys: dict[Any, str] = {}  # a batch repeats few keys many times: validate each once
    for item in metrics:
        if not isinstance(item, dict):
            raise InvalidParameter(f"Invalid metric {item!r}: expected an object.")
        raw_key = item.get("key")
        key = keys.get(raw_key) if isinstance(raw_key, str) else None
        if key is None:
            key = keys[raw_key] = validate_key(raw_key, "metric")
        value = item.get("value")
        if type(value) is not float:
            value = validate_metric_value(value, key)
        # The common case, a plain int in range, is checked here; anything else (and the
        # error message naming the metric) goes through the general parser.
        timestamp = item.get("timestamp")
        if not (type(timestamp) is int and 0 <= timestamp <= INT64_MAX):
            timestamp = validate_int64(timestamp, f"timestamp of metric '{key}'", allow_none=False, minimum=0)
        step = item.get("step")
        if not (type(step) is int and INT64_MIN <= step <= INT64_MAX):
            step = validate_int64(step, f"step of metric '{key}'", allow_none=True)
        model_id = item.get("model_id") or None
        if model_id is not None:
            model_id = validate_logged_model_id(model_id, f"of metric '{key}'")
        dataset_name = item.get("dataset_name") or None
        if dataset_name is not None:
            dataset_name = validate_text(dataset_name, "dataset_name of metric", key, MAX_DATASET_NAME_SIZE)
        dataset_digest = item.get("dataset_digest") or None
        if dataset_digest is not None:
            dataset_digest = validate_text(dataset_digest, "dataset_digest of metric", key, MAX_DATASET_DIGEST_SIZE)
        points.append(MetricPoint(key, value, timestamp, step or 0, model_id, dataset_name, dataset_digest))
    return points


_LATEST_UPSERT = """
INSERT INTO tracking_latestmetric (run_id, experiment_id, key, value, is_nan, timestamp, step)
VALUES {rows}
ON CONFLICT (run_id, key) DO UPDATE SET
    value = excluded.value, is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step
WHERE excluded.step > tracking_latestmetric.step
   OR (excluded.step = tracking_latestmetric.step AND excluded.timestamp > tracking_latestmetric.timestamp)
   OR (excluded.step = tracking_latestmetric.step AND excluded.timestamp = tracking_latestmetric.timestamp
       AND excluded.value > tracking_latestmetric.value)
"""


def _latest_per_key(points: list[MetricPoint]) -> list[MetricPoint]:
    """The summary candidate per key: highest step, then latest timestamp, then largest value."""
    best: dict[str, MetricPoint] = {}
    for p in points:
        current = best.get(p.key)
        if current is None or (p.step, p.timestamp, p.stored_value) > (current.step, current.timestamp, current.stored_value):
            best[p.key] = p
    return list(best.values())


_HISTORY_INSERT = """
INSERT INTO tracking_metric (run_id, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest)
VALUES {rows}
ON CONFLICT DO NOTHING
"""

# On PostgreSQL one short statement with one array per column: psycopg parses a query's
# placeholders in Python and caches only short queries, so a 500-row VALUES list cost more
# in the driver (about 9,000 placeholders split per 1,000 points) than in the database.
_HISTORY_INSERT_POSTGRES = """
INSERT INTO tracking_metric (run_id, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest)
SELECT %s, * FROM unnest(
    %s::varchar[], %s::double precision[], %s::boolean[], %s::bigint[], %s::bigint[],
    %s::varchar[], %s::varchar[], %s::varchar[]
)
ON CONFLICT DO NOTHING
"""


def _history_insert_postgres(cursor, run: Run, points: list[MetricPoint]) -> None:
    cursor.execute(
        _HISTORY_INSERT_POSTGRES,
        [
            run.pk,
            [p.key for p in points],
            [p.stored_value for p in points],
            [p.is_nan for p in points],
            [p.timestamp for p in points],
            [p.step for p in points],
            [p.model_id for p in points],
            [p.dataset_name for p in points],
            [p.dataset_digest for p in points],
        ],
    )


def _metrics_write(run: Run, points: list[MetricPoint]) -> None:
    """Append points to the history and move each key's latest value forward.

    Plain INSERTs (the ORM's bulk_create spends more time compiling SQL than the database
    spends writing); ON CONFLICT DO NOTHING skips points already in the history.
    """
    if not points:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _history_insert_postgres(cursor, run, points)
        else:
            # One short statement run for every point: SQLite prepares it once, and Django
            # rewrites its placeholders once rather than 9,000 of them per 1,000 points.
            cursor.executemany(
                _HISTORY_INSERT.format(rows="(%s, %s, %s, %s, %s, %s, %s, %s, %s)"),
                [
                    (run.pk, p.key, p.stored_value, p.is_nan, p.timestamp, p.step, p.model_id, p.dataset_name, p.dataset_digest)
                    for p in points
                ],
            )
        latest = _latest_per_key(points)
        args: list[Any] = []
        for p in latest:
            args += [run.pk, run.experiment_id, p.key, p.stored_value, p.is_nan, p.timestamp, p.step]
        rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(latest))
        cursor.execute(_LATEST_UPSERT.format(rows=rows), args)
    model_points = [p for p in points if p.model_id]
    if model_points:
        _logged_model_metrics_write(run, model_points)


def _logged_model_metrics_write(run: Run, points: list[MetricPoint]) -> None:
    # run_log_batch has checked that the models exist in the run's experiment and that the actor may edit them.
    LoggedModelMetric.objects.bulk_create(
        [
            LoggedModelMetric(
                model_id=p.model_id,
                run_id=run.pk,
                key=p.key,
                value=p.stored_value,
                is_nan=p.is_nan,
                timestamp=p.timestamp,
                step=p.step,
                dataset_name=p.dataset_name,
                dataset_digest=p.dataset_digest,
            )
            for p in points
        ],
        ignore_conflicts=True,
    )


def _params_write(run: Run, params: dict[str, str]) -> None:
    params_insert_immutable(
        model=Param,
        owner_field="run",
        owner_id=run.pk,
        params=params,
        label=f"run ID='{run.pk}'",
        copied={"experiment_id": run.experiment_id},
    )


def _tags_write(run: Run, tags: dict[str, str]) -> None:
    if not tags:
        return
    RunTag.objects.bulk_create(
        [RunTag(run_id=run.pk, experiment_id=run.experiment_id, key=k, value=v) for k, v in tags.items()],
        update_conflicts=True,
        unique_fields=["run", "key"],
        update_fields=["value"],
    )
    if RUN_NAME_TAG in tags and tags[RUN_NAME_TAG] != run.name:
        run.name = tags[RUN_NAME_TAG][:MAX_RUN_NAME_LENGTH]
        Run.objects.filter(pk=run.pk).update(name=run.name)


def run_log_batch(
    *,
    actor: AbstractBaseUser,
    run_id: str,
    metrics: list[dict] | None = None,
    params: list[dict] | None = None,
    tags: list[dict] | None = None,
) -> Run:
    """Log metrics, params and tags to an active run, all or nothing.

    Limits are MLflow's: 1000 metrics, 100 params, 100 tags per call. A param already
    logged with another value fails the whole batch. Metric points already in the history
    (same key, step, timestamp and value) are not stored twice.
    """
    metrics, params, tags = metrics or [], params or [], tags or []
    for name, items, limit in (
        ("metrics", metrics, MAX_METRICS_PER_BATCH),
        ("params", params, MAX_PARAMS_TAGS_PER_BATCH),
        ("tags", tags, MAX_PARAMS_TAGS_PER_BATCH),
    ):
        if not isinstance(items, list):
            raise InvalidParameter(f"Invalid value for parameter '{name}': expected a list.")
        if len(items) > limit:
            raise InvalidParameter(
                f"A batch logging request can contain at most {limit} {name}. Got {len(items)} {name}. "
                "Please split up the request into multiple requests."
            )
    points = _validated_metrics(metrics)
    param_values = validate_params(params)
    tag_values = validate_tags(tags)
    run = _run_for_write(actor, run_id)
    _require_active_run(run)
    _parent_run_check(actor, tag_values)
    model_ids = {p.model_id for p in points if p.model_id}
    if model_ids:
        _logged_models_for_write(actor, run, model_ids)
    with transaction.atomic():
        _params_write(run, param_values)
        _tags_write(run, tag_values)
        _metrics_write(run, points)
    return run


def run_log_metric(*, actor: AbstractBaseUser, run_id: str, metric: dict) -> Run:
    return run_log_batch(actor=actor, run_id=run_id, metrics=[metric])


def run_log_param(*, actor: AbstractBaseUser, run_id: str, key: str, value: Any) -> Run:
    return run_log_batch(actor=actor, run_id=run_id, params=[{"key": key, "value": value}])


def run_set_tag(*, actor: AbstractBaseUser, run_id: str, key: str, value: Any) -> Run:
    return run_log_batch(actor=actor, run_id=run_id, tags=[{"key": key, "value": value}])


@transaction.atomic
def run_delete_tag(*, actor: AbstractBaseUser, run_id: str, key: str) -> Run:
    run = _run_for_write(actor, run_id)
    _require_active_run(run)
    deleted, _ = RunTag.objects.filter(run_id=run.pk, key=key).delete()
    if not deleted:
        raise NotFound(f"No tag with name: {key} in run with id {run.pk}")
    return run


# ---------------------------------------------------------------- inputs and outputs


def _dataset_fields(item: dict) -> dict[str, str]:
    dataset = item.get("dataset")
    if not isinstance(dataset, dict):
        raise InvalidParameter("Each dataset input needs a 'dataset' object.")
    limits = {
        "name": MAX_DATASET_NAME_SIZE,
        "digest": MAX_DATASET_DIGEST_SIZE,
        "source_type": 36,
        "source": MAX_DATASET_SOURCE_SIZE,
        "schema": MAX_DATASET_SCHEMA_SIZE,
        "profile": MAX_DATASET_PROFILE_SIZE,
    }
    fields = {}
    for name, limit in limits.items():
        required = name in ("name", "digest", "source_type", "source")
        value = dataset.get(name)
        if required and (value is None or value == ""):
            raise InvalidParameter(f"Missing value for required parameter 'dataset.{name}'.")
        fields[name] = validate_text(value, "dataset", name, limit, allow_none=True)
    return fields


@transaction.atomic
def run_log_inputs(
    *, actor: AbstractBaseUser, run_id: str, datasets: list[dict] | None = None, models: list[dict] | None = None
) -> Run:
    """Record the datasets (and logged models) a run used. Logging the same input again is a no-op."""
    run = _run_for_write(actor, run_id)
    _require_active_run(run)
    datasets, models = datasets or [], models or []
    if len(datasets) > 1000:
        raise InvalidParameter("A log-inputs request can contain at most 1000 datasets.")
    for item in datasets:
        if not isinstance(item, dict):
            raise InvalidParameter(f"Invalid dataset input {item!r}: expected an object.")
        fields = _dataset_fields(item)
        tags = validate_tags(
            item.get("tags"),
            kind="input tag",
            max_key_length=MAX_INPUT_TAG_KEY_SIZE,
            max_value_length=MAX_INPUT_TAG_VALUE_SIZE,
        )
        dataset, _ = Dataset.objects.get_or_create(
            experiment_id=run.experiment_id,
            name=fields["name"],
            digest=fields["digest"],
            defaults={k: fields[k] for k in ("source_type", "source", "schema", "profile")},
        )
        run_input, created = RunInput.objects.get_or_create(run=run, dataset=dataset)
        if created:
            InputTag.objects.bulk_create([InputTag(run_input=run_input, key=k, value=v) for k, v in tags.items()])
    for item in models:
        model_id = item.get("model_id") if isinstance(item, dict) else None
        if not model_id or not isinstance(model_id, str):
            raise InvalidParameter("Each model input needs a 'model_id'.")
        validate_logged_model_id(model_id, "of a model input")
        # Using a model reads it: the actor must be able to see it.
        logged_model_get_for_user(actor, model_id)
        RunModelInput.objects.get_or_create(run=run, model_id=model_id)
    return run


@transaction.atomic
def run_log_outputs(*, actor: AbstractBaseUser, run_id: str, models: list[dict]) -> Run:
    """Link logged models to the run that produced them (MLflow 3's log_model flow)."""
    run = _run_for_write(actor, run_id)
    _require_active_run(run)
    for item in models or []:
        model_id = item.get("model_id") if isinstance(item, dict) else None
        if not model_id or not isinstance(model_id, str):
            raise InvalidParameter("Each model output needs a 'model_id'.")
        validate_logged_model_id(model_id, "of a model output")
        step = validate_int64(item.get("step"), "step") or 0
        model = _logged_models_for_write(actor, run, {model_id})[model_id]
        RunModelOutput.objects.update_or_create(run=run, model=model, defaults={"step": step})
    return run
