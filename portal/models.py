from django.conf import settings
from django.db import models


class ApiTokenQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 digest is stored: tokens carry 256 bits of
    randomness, so a fast digest is safe and lets every request look one up directly."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    # The first characters of the token, so its owner can tell tokens apart in a list.
    prefix = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Team(models.Model):
    """What the portal adds to a Django group to make it a team: a description and team admins.

    A team *is* a `django.contrib.auth.models.Group` (its members are the group's users);
    this row shares the group's primary key. Team admins may add and remove members; they
    are members themselves. Groups made in the Django admin get their row on first use.
    """

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, primary_key=True, related_name="team")
    description = models.TextField(blank=True, default="")
    admins = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="administered_teams")

    def __str__(self) -> str:
        return self.group.name


class TeamDefaultGrant(models.Model):
    """A team's level on every object of one resource type (MLflow's role permission on "*").

    Like PORTAL_DEFAULT_PERMISSION it does not reach private objects; a DENY here denies the
    team every object of the type, private ones included.
    """

    class ResourceType(models.TextChoices):
        EXPERIMENT = "experiment"
        REGISTERED_MODEL = "registered_model"

    class Level(models.TextChoices):
        READ = "READ"
        USE = "USE"
        EDIT = "EDIT"
        MANAGE = "MANAGE"
        DENY = "DENY"

    team = models.ForeignKey("auth.Group", on_delete=models.CASCADE, related_name="default_grants")
    resource_type = models.CharField(max_length=32, choices=ResourceType.choices)
    level = models.CharField(max_length=16, choices=Level.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "resource_type"], name="uniq_team_default_grant")]

    def __str__(self) -> str:
        return f"{self.team_id} {self.resource_type} * {self.level}"


class AuditEventQuerySet(models.QuerySet):
    """Append-only: a queryset of audit events can be read and added to, never changed."""

    def update(self, **kwargs):
        raise AuditLogIsAppendOnly("Audit events are never updated.")

    def delete(self):
        raise AuditLogIsAppendOnly("Audit events are never deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogIsAppendOnly("Audit events are never updated.")


class AuditLogIsAppendOnly(Exception):
    pass


class AuditEvent(models.Model):
    """One governance change: who did what to which object, with the state before and after.

    Append-only. The model refuses updates and deletes (save() of an existing row, delete(),
    queryset update()/delete()), the admin shows events read-only, and a database trigger
    refuses UPDATE (and on PostgreSQL DELETE) from any other code path. The actor and the
    object are copied as values, not foreign keys: deleting a user or a model must not
    rewrite (or cascade into) the history of what they did.

    `resource_type`/`resource_id` name the guarded root the event concerns (a registered
    model for its versions, requests and policy), so MANAGE holders of that root may read it.
    """

    timestamp = models.DateTimeField(db_index=True)
    actor_id = models.IntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_name = models.CharField(max_length=500, blank=True, default="")
    resource_type = models.CharField(max_length=64, blank=True, default="")
    resource_id = models.CharField(max_length=64, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # The HTTP request that caused it (X-Request-ID or one made up) and its client address;
    # empty for changes made by a task or a management command.
    request_id = models.CharField(max_length=64, blank=True, default="")
    client_address = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "id"], name="audit_object"),
            models.Index(fields=["resource_type", "resource_id", "id"], name="audit_resource"),
            models.Index(fields=["actor_id", "id"], name="audit_actor"),
            models.Index(fields=["action", "id"], name="audit_action"),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.actor_username or 'system'} {self.action} {self.object_name}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Audit events are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit events are never deleted.")


# ---------------------------------------------------------------- webhooks


class WebhookQuerySet(models.QuerySet):
    def live(self):
        """Not deleted, and not scoped to a registered model that is gone (such a webhook
        would match nothing; it is kept, with its deliveries, as history)."""
        return self.filter(deleted_timestamp__isnull=True).exclude(
            scope=Webhook.Scope.REGISTERED_MODEL, registered_model__isnull=True
        )

    def active(self):
        return self.live().filter(status=Webhook.Status.ACTIVE)

    def for_registered_model(self, registered_model_id: int | None):
        """The global webhooks, plus those scoped to this registered model (if any)."""
        scope = models.Q(scope=Webhook.Scope.GLOBAL)
        if registered_model_id is not None:
            scope |= models.Q(scope=Webhook.Scope.REGISTERED_MODEL, registered_model_id=registered_model_id)
        return self.filter(scope)


class Webhook(models.Model):
    """A subscription of a URL to registry events, as MLflow's Webhook entity (portal.webhooks).

    Global webhooks (every registered model's events) belong to superusers; a webhook scoped
    to one registered model belongs to that model: its MANAGE holders see and change it,
    whoever created it.

    Deleting is soft (`deleted_timestamp`), as in MLflow's own store: a deleted webhook is
    never delivered to again and is gone from every list and lookup, but its row stays so
    its deliveries remain listable and the audit log keeps pointing at something. When its
    registered model is deleted, a scoped webhook keeps its scope with no model (SET_NULL)
    and so matches nothing: it is never turned into a global one.

    The secret is stored encrypted (Fernet, with a key derived from SECRET_KEY; see
    portal.webhooks.secrets) because signing needs it in clear, and it is never shown again.
    """

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        DISABLED = "DISABLED"

    class Scope(models.TextChoices):
        GLOBAL = "global"
        REGISTERED_MODEL = "registered_model"

    webhook_id = models.CharField(max_length=36, unique=True)
    name = models.CharField(max_length=63)
    description = models.TextField(blank=True, default="")
    url = models.CharField(max_length=2048)
    # Event names ("model_version.created", ...): see portal.webhooks.events.
    events = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    scope = models.CharField(max_length=32, choices=Scope.choices, default=Scope.GLOBAL)
    registered_model = models.ForeignKey(
        "registry.RegisteredModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    secret_encrypted = models.TextField(blank=True, default="")
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    deleted_timestamp = models.BigIntegerField(null=True, blank=True)

    objects = WebhookQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["registered_model", "status"], name="webhook_model_status")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope="registered_model") | models.Q(registered_model__isnull=True),
                name="webhook_global_has_no_model",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.webhook_id})"

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one webhook, with every attempt.

    `payload` is the exact JSON body, fixed when the event happened, so every attempt sends
    (and signs) the same bytes; the receiver tells retries apart from new events by the
    delivery id, which also stays the same. `attempt_log` holds one entry per attempt
    (time, status code, error, duration).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        # The webhook was disabled or deleted before the delivery was sent.
        SKIPPED = "skipped"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(max_length=36, unique=True)
    event = models.CharField(max_length=64)
    payload = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    attempt_log = models.JSONField(default=list)
    created_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the next attempt is due (None: the first, as soon as a worker takes it).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while an attempt runs, so a duplicate task (a re-queue, an early retry) stays away;
    # if the worker dies, the claim expires and the sweep sends the delivery again.
    claimed_until = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["webhook", "id"], name="webhook_delivery_webhook"),
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to webhook {self.webhook_id} ({self.status})"
