"""The model registry: registered models, their versions, tags, aliases, stage history, comments.

A RegisteredModel is a guarded root (portal.permissions), as an Experiment is: its
versions, tags, aliases, stage history and comments take their access from it. Times are
integer milliseconds since the epoch where MLflow shows them (versions, models); comments,
which MLflow does not have, use timezone-aware datetimes.
"""

from django.conf import settings
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from tracking.models import LoggedModel, Run


class Stage(models.TextChoices):
    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


# Which stage a version may move to from each stage. MLflow allows every move (the
# tutorials go straight from None to Production); the table is where a stricter policy
# would go, and model_version_transition_stage checks it.
ALLOWED_TRANSITIONS: dict[str, set[str]] = {stage: {other for other in Stage if other != stage} for stage in Stage}

# Stages whose other versions `archive_existing_versions` may archive (MLflow's "active" stages).
ACTIVE_STAGES = (Stage.STAGING, Stage.PRODUCTION)


class ModelVersionStatus(models.TextChoices):
    """MLflow's ModelVersionStatus. Versions are READY at once: the portal copies no files."""

    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


class RegisteredModel(models.Model):
    """A named model in the registry: the root its versions take their access from."""

    name = models.CharField(max_length=256, unique=True)
    description = models.TextField(blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    # The highest version number ever given out. Incremented under a row lock when a version
    # is created and never decremented, so numbers are not reused after a deletion.
    last_version_number = models.PositiveIntegerField(default=0)
    # Private: signed-in users without a grant get nothing here, whatever PORTAL_DEFAULT_PERMISSION says.
    private = models.BooleanField(default=False)

    # portal.permissions: grants live on registered models; the name of the type in grant APIs.
    access_resource_type = "registered_model"
    access_resource_key = "name"  # grant APIs name a registered model by its name

    class Meta:
        # Search orders by name (the unique index) or by last update; a page of the newest
        # is read from this index rather than by sorting every model.
        indexes = [models.Index(fields=["last_updated_timestamp"], name="registered_model_updated")]
        # One row per grantee holds its level (view < use < change < manage, or deny); approve is separate.
        permissions = [
            ("use_registeredmodel", "Can use registered model (MLflow's USE: reads here)"),
            ("manage_registeredmodel", "Can manage registered model (delete, grant access)"),
            ("deny_registeredmodel", "Is denied the registered model, whatever else is granted"),
            ("approve_transition", "Can approve stage and alias transition requests"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def guarded_root(self) -> "RegisteredModel":
        return self


class RegisteredModelUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE)


class RegisteredModelGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE)


class RegisteredModelTag(models.Model):
    access_parent = "registered_model"

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registered_model", "key"], name="uniq_registered_model_tag")]

    @property
    def guarded_root(self) -> RegisteredModel:
        return self.registered_model


class ModelVersion(models.Model):
    """One version of a registered model.

    `source` is what the client registered (`models:/m-…`, `runs:/<run>/<path>`, an
    `mlflow-artifacts:/` URI); `storage_location` is where that resolved to in the
    portal's artifact store when the version was created, and is what clients download.
    """
    access_parent = "registered_model"


    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=1000)
    storage_location = models.CharField(max_length=1000)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    logged_model = models.ForeignKey(LoggedModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run_link = models.CharField(max_length=1000, blank=True, default="")
    description = models.TextField(blank=True, default="")
    current_stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NONE)
    status = models.CharField(max_length=30, choices=ModelVersionStatus.choices, default=ModelVersionStatus.READY)
    status_message = models.TextField(blank=True, default="")
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()

    class Meta:
        constraints = [
            # The counter on RegisteredModel assigns numbers; this is the backstop.
            models.UniqueConstraint(fields=["registered_model", "version"], name="uniq_model_version_number")
        ]
        indexes = [
            models.Index(fields=["registered_model", "current_stage", "version"], name="model_version_stage"),
            # Artifact reads through a registered model look versions up by their files.
            models.Index(fields=["storage_location"], name="model_version_location"),
            # Search's default order (newest update first): a page is read from this index
            # rather than by sorting every matching version.
            models.Index(fields=["last_updated_timestamp"], name="model_version_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name} version {self.version}"

    @property
    def guarded_root(self) -> RegisteredModel:
        return self.registered_model


class ModelVersionTag(models.Model):
    access_parent = "model_version"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "key"], name="uniq_model_version_tag")]

    @property
    def guarded_root(self) -> RegisteredModel:
        return self.model_version.registered_model


class ModelAlias(models.Model):
    """A named pointer (`champion`) from a registered model to one of its versions."""
    access_parent = "registered_model"


    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=255)
    # Deleting a version deletes the aliases that point at it, as MLflow does.
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registered_model", "alias"], name="uniq_model_alias")]

    def __str__(self) -> str:
        return f"{self.registered_model.name}@{self.alias}"

    @property
    def guarded_root(self) -> RegisteredModel:
        return self.registered_model


class StageTransition(models.Model):
    """One stage change of a version: who moved it, from where, to where, when.

    Kept on the registered model, so the history outlives a deleted version (the row then
    keeps its `version_number`).
    """
    access_parent = "registered_model"


    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="stage_transitions")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="stage_transitions"
    )
    version_number = models.PositiveIntegerField()
    from_stage = models.CharField(max_length=20, choices=Stage.choices)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    timestamp = models.BigIntegerField()
    # Why, when it was not asked for directly: "archived when version 3 moved to Production".
    reason = models.CharField(max_length=500, blank=True, default="")
    # The approved request this change applied (also for the versions it archived), if any.
    transition_request = models.ForeignKey(
        "TransitionRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="stage_transitions"
    )

    class Meta:
        indexes = [models.Index(fields=["registered_model", "version_number", "id"], name="stage_transition_version")]

    def __str__(self) -> str:
        return f"{self.registered_model_id} v{self.version_number}: {self.from_stage} -> {self.to_stage}"

    @property
    def guarded_root(self) -> RegisteredModel:
        return self.registered_model


class Comment(models.Model):
    """A Markdown comment on a registered model, on one of its versions (`model_version`
    set) or on a transition request (`transition_request` set)."""
    access_parent = "registered_model"


    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="comments")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    transition_request = models.ForeignKey(
        "TransitionRequest", null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["registered_model", "model_version", "created_at"], name="comment_target")]

    def __str__(self) -> str:
        return f"comment {self.pk} on {self.registered_model_id}"

    @property
    def guarded_root(self) -> RegisteredModel:
        return self.registered_model


class AliasTransition(models.Model):
    """One alias change: set (from nothing), moved (from one version to another) or deleted.

    Like StageTransition it is kept on the registered model and keeps version numbers, so
    the history outlives the versions it names.
    """

    access_parent = "registered_model"

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="alias_transitions")
    alias = models.CharField(max_length=255)
    from_version_number = models.PositiveIntegerField(null=True, blank=True)  # None: the alias was not set
    to_version_number = models.PositiveIntegerField(null=True, blank=True)  # None: the alias was deleted
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    timestamp = models.BigIntegerField()
    reason = models.CharField(max_length=500, blank=True, default="")
    transition_request = models.ForeignKey(
        "TransitionRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="alias_transitions"
    )

    class Meta:
        indexes = [models.Index(fields=["registered_model", "alias", "id"], name="alias_transition_alias")]

    def __str__(self) -> str:
        return f"{self.registered_model_id}@{self.alias}: {self.from_version_number} -> {self.to_version_number}"

    @property
    def guarded_root(self) -> RegisteredModel:
        return self.registered_model


class ModelPolicy(models.Model):
    """A registered model's approval policy. A model without a row has the default one
    (registry.services.policy: PORTAL_PROTECTED_STAGES protected, one approval, never the
    requester's own).

    `approvers` narrows who may decide a target beyond "has APPROVE on the model":
    {"stage:Production": {"users": [user ids], "teams": [group ids]}}; a target without an
    entry may be decided by every APPROVE holder.
    """

    registered_model = models.OneToOneField(
        RegisteredModel, on_delete=models.CASCADE, primary_key=True, related_name="policy"
    )
    protected_stages = models.JSONField(default=list)
    protected_aliases = models.JSONField(default=list)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    requester_may_approve = models.BooleanField(default=False)
    approvers = models.JSONField(default=dict)
    updated_at = models.BigIntegerField()

    access_parent = "registered_model"

    def __str__(self) -> str:
        return f"policy of {self.registered_model_id}"

    @property
    def guarded_root(self) -> RegisteredModel:
        return self.registered_model


class TransitionRequest(models.Model):
    """A request to change a protected target: move a version to a stage, or set or delete
    an alias. See registry.services.requests for the state machine."""

    class Action(models.TextChoices):
        TRANSITION_STAGE = "transition_stage"
        SET_ALIAS = "set_alias"
        DELETE_ALIAS = "delete_alias"

    class State(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        APPLIED = "applied"
        REJECTED = "rejected"
        CANCELLED = "cancelled"
        FAILED = "failed"
        SUPERSEDED = "superseded"

    access_parent = "registered_model"

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="transition_requests"
    )
    # SET_NULL: a deleted version supersedes its requests, which stay as history.
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="transition_requests"
    )
    version_number = models.PositiveIntegerField()
    action = models.CharField(max_length=20, choices=Action.choices)
    # The stage (for transition_stage) or the alias name.
    target = models.CharField(max_length=255)
    # The version's stage, or the alias's version number, when the request was made.
    from_stage = models.CharField(max_length=20, blank=True, default="")
    archive_existing_versions = models.BooleanField(default=False)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True, default="")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    # Why it failed or was superseded.
    state_reason = models.TextField(blank=True, default="")
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    applied_timestamp = models.BigIntegerField(null=True, blank=True)
    # Attempts of the apply task that reached the apply step (a retry after failure adds one).
    apply_attempts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # One open request per target and version: asking again returns the open one.
            models.UniqueConstraint(
                fields=["model_version", "action", "target"],
                condition=models.Q(state="pending"),
                name="one_pending_request_per_target",
            )
        ]
        indexes = [
            models.Index(fields=["state", "id"], name="transition_request_state"),
            models.Index(fields=["registered_model", "state", "id"], name="transition_request_model"),
        ]

    def __str__(self) -> str:
        return f"transition request {self.pk}"

    @property
    def guarded_root(self) -> RegisteredModel:
        return self.registered_model

    @property
    def target_label(self) -> str:
        if self.action == self.Action.TRANSITION_STAGE:
            return f"stage {self.target}"
        if self.action == self.Action.DELETE_ALIAS:
            return f"deleting alias @{self.target}"
        return f"alias @{self.target}"


class Approval(models.Model):
    """One reviewer's decision on a request: approve or reject, with a comment."""

    class Decision(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"

    access_parent = "transition_request"

    transition_request = models.ForeignKey(TransitionRequest, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True, default="")
    timestamp = models.BigIntegerField()

    class Meta:
        constraints = [
            # One decision per reviewer and request: approving twice counts once.
            models.UniqueConstraint(fields=["transition_request", "reviewer"], name="one_decision_per_reviewer")
        ]

    @property
    def guarded_root(self) -> RegisteredModel:
        return self.transition_request.registered_model


class ModelWatch(models.Model):
    """A user watching a registered model: they are emailed when a change is applied to it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="watches")
    created_at = models.DateTimeField(auto_now_add=True)

    access_parent = "registered_model"

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "registered_model"], name="uniq_model_watch")]

    @property
    def guarded_root(self) -> RegisteredModel:
        return self.registered_model
