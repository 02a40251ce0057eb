"""Tracking data: experiments, runs and everything logged to them.

Times are integer milliseconds since the epoch, as MLflow uses them. Run ids are 32-hex
strings and logged-model ids `m-<32 hex>`, so the MLflow door can hand them out as is.
"""

from django.conf import settings
from django.db import models
from django.db.models import F
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from tracking.sql import value_prefix


class LifecycleStage(models.TextChoices):
    ACTIVE = "active"
    DELETED = "deleted"


class RunStatus(models.TextChoices):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class ExperimentQuerySet(models.QuerySet):
    def active(self):
        return self.filter(lifecycle_stage=LifecycleStage.ACTIVE)


class Experiment(models.Model):
    """The root object runs, metrics, artifacts and logged models take their access from."""

    DEFAULT_ID = 0

    name = models.CharField(max_length=500, unique=True)
    artifact_location = models.CharField(max_length=1000)
    lifecycle_stage = models.CharField(
        max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    creation_time = models.BigIntegerField()
    last_update_time = models.BigIntegerField()
    deleted_time = models.BigIntegerField(null=True, blank=True)
    # Private: signed-in users without a grant get nothing here, whatever PORTAL_DEFAULT_PERMISSION says.
    private = models.BooleanField(default=False)

    objects = ExperimentQuerySet.as_manager()

    # portal.permissions: grants live on experiments; this is the name of the type in grant APIs.
    access_resource_type = "experiment"
    access_resource_key = "pk"  # grant APIs name an experiment by its id
    # The Default experiment takes runs from every signed-in user, as MLflow's does (portal.permissions).
    access_open_pk = DEFAULT_ID

    class Meta:
        # One row per grantee holds its level (view < use < change < manage, or deny); see portal.permissions.
        permissions = [
            ("use_experiment", "Can use experiment (MLflow's USE: reads here)"),
            ("manage_experiment", "Can manage experiment (delete, grant access)"),
            ("deny_experiment", "Is denied the experiment, whatever else is granted"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def guarded_root(self) -> "Experiment":
        return self

    @property
    def is_open_to_all(self) -> bool:
        """The Default experiment takes runs from every signed-in user, as MLflow's does."""
        return self.pk == self.access_open_pk


class ExperimentTag(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "key"], name="uniq_experiment_tag")]


class ExperimentUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Experiment, on_delete=models.CASCADE)


class ExperimentGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Experiment, on_delete=models.CASCADE)


class RunQuerySet(models.QuerySet):
    def active(self):
        return self.filter(lifecycle_stage=LifecycleStage.ACTIVE)


class Run(models.Model):
    id = models.CharField(max_length=32, primary_key=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=250, blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the client sent as user_id (MLflow shows it); `owner` is who really created it.
    user_id = models.CharField(max_length=256, blank=True, default="")
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.RUNNING)
    # Always set (services default it to now): the search orders and pages on it.
    start_time = models.BigIntegerField()
    end_time = models.BigIntegerField(null=True, blank=True)
    lifecycle_stage = models.CharField(
        max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE
    )
    artifact_uri = models.CharField(max_length=1000)
    deleted_time = models.BigIntegerField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    # portal.permissions: a run takes its access from its experiment; in the Default
    # experiment its creator (owner) also has it.
    access_parent = "experiment"
    access_creator = "owner"

    class Meta:
        indexes = [
            models.Index(fields=["experiment", "lifecycle_stage", "-start_time"], name="run_exp_start"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def guarded_root(self) -> Experiment:
        return self.experiment


class Param(models.Model):
    """Immutable once logged: the same value again is accepted, another value is not."""

    access_parent = "run"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    # The run's experiment, copied here so a search starts from this table's index
    # (runs never change experiment).
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="uniq_run_param")]
        indexes = [
            # Search: equality and order by value within one experiment and key, through
            # the value's prefix (tracking.sql).
            models.Index(F("experiment"), F("key"), value_prefix(), F("run"), name="param_search"),
        ]


class RunTag(models.Model):
    access_parent = "run"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    # The run's experiment, copied here so a search starts from this table's index
    # (runs never change experiment).
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="uniq_run_tag")]
        indexes = [
            # Search: equality and order by value within one experiment and key, through
            # the value's prefix (tracking.sql).
            models.Index(F("experiment"), F("key"), value_prefix(), F("run"), name="run_tag_search"),
        ]


class Metric(models.Model):
    """One point of a metric's history. NaN is stored as is_nan with value 0 (SQLite has no NaN)."""

    access_parent = "run"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField()
    model_id = models.CharField(max_length=40, null=True, blank=True)
    dataset_name = models.CharField(max_length=500, null=True, blank=True)
    dataset_digest = models.CharField(max_length=36, null=True, blank=True)

    class Meta:
        constraints = [
            # Logging the same point twice does not grow the history (MLflow's log_model
            # flow re-logs the run's metrics with a model_id). It also serves history reads.
            models.UniqueConstraint(
                fields=["run", "key", "step", "timestamp", "value", "is_nan"], name="uniq_metric_point"
            )
        ]


class LatestMetric(models.Model):
    """The summary value per (run, key): highest step, then latest timestamp, then largest value.
    Maintained on write so search and sort never scan history."""

    access_parent = "run"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics", db_index=False)
    # The run's experiment, copied here so a search starts from this table's index.
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="uniq_latest_metric")]
        indexes = [
            # Search: a metric's range conditions and its order within one experiment.
            models.Index(fields=["experiment", "key", "is_nan", "value", "run"], name="latest_metric_search"),
        ]


class Dataset(models.Model):
    access_parent = "experiment"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=36)
    source_type = models.CharField(max_length=36)
    source = models.TextField()
    schema = models.TextField(blank=True, default="")
    profile = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name", "digest"], name="uniq_dataset")
        ]


class RunInput(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="dataset_inputs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "dataset"], name="uniq_run_input")]


class InputTag(models.Model):
    run_input = models.ForeignKey(RunInput, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=255)
    value = models.CharField(max_length=500)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run_input", "key"], name="uniq_input_tag")]


class LoggedModelStatus(models.TextChoices):
    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    UPLOAD_FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


class LoggedModel(models.Model):
    """An MLflow 3 logged model: artifacts under <experiment>/models/<id>/artifacts."""

    id = models.CharField(max_length=34, primary_key=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="logged_models")
    name = models.CharField(max_length=500)
    source_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="logged_models"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model_type = models.CharField(max_length=500, blank=True, default="")
    artifact_location = models.CharField(max_length=1000)
    status = models.CharField(max_length=40, choices=LoggedModelStatus.choices, default=LoggedModelStatus.PENDING)
    status_message = models.TextField(blank=True, default="")
    lifecycle_stage = models.CharField(
        max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE
    )
    creation_timestamp_ms = models.BigIntegerField()
    last_updated_timestamp_ms = models.BigIntegerField()

    # portal.permissions: as a run's.
    access_parent = "experiment"
    access_creator = "owner"

    class Meta:
        indexes = [models.Index(fields=["experiment", "name"], name="logged_model_exp_name")]

    @property
    def guarded_root(self) -> Experiment:
        return self.experiment


class LoggedModelParam(models.Model):
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="uniq_logged_model_param")]


class LoggedModelTag(models.Model):
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="uniq_logged_model_tag")]


class LoggedModelMetric(models.Model):
    """Metrics logged with a model_id, kept per model so a logged model reads them without
    scanning the run histories."""

    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="metrics")
    run = models.ForeignKey(Run, null=True, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField()
    dataset_name = models.CharField(max_length=500, null=True, blank=True)
    dataset_digest = models.CharField(max_length=36, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "run", "key", "step", "timestamp", "value", "is_nan"],
                name="uniq_logged_model_metric",
            )
        ]


class RunModelInput(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="model_inputs")
    model_id = models.CharField(max_length=40)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "model_id"], name="uniq_run_model_input")]


class RunModelOutput(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="model_outputs")
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="+")
    step = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "model"], name="uniq_run_model_output")]


class Comment(models.Model):
    """A Markdown comment on an experiment, or on one of its runs (`run` set).

    The rule (who may comment, edit, delete) is portal.annotations'."""

    # portal.permissions: a comment takes its access from its experiment. Code that shows
    # a run's comments reaches them through the run (its creator may read it in the
    # Default experiment without reading the experiment), see tracking.selectors.
    access_parent = "experiment"

    # Indexed by tracking_comment_target, which leads with it.
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="comments", db_index=False)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        # A list of one object's comments, oldest first (a run's is asked with its experiment).
        indexes = [models.Index(fields=["experiment", "run", "id"], name="tracking_comment_target")]

    def __str__(self) -> str:
        return f"comment {self.pk} on {self.run_id or self.experiment_id}"

    @property
    def guarded_root(self) -> Experiment:
        return self.experiment

    @property
    def subject(self) -> Experiment | Run:
        """What the comment is about: its run, or else its experiment."""
        return self.run if self.run_id is not None else self.experiment
