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
