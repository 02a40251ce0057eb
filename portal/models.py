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
