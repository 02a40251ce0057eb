from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group

from portal.models import ApiToken, Team, TeamDefaultGrant


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    # Digests are useless to read and must not be edited by hand.
    readonly_fields = ["digest", "prefix", "created_at", "last_used_at"]


# Teams are Django groups: the group admin shows the portal's part of a team (description,
# team admins) and the team's defaults (its level on every object of a type) inline.
# Members are edited on the user page, as for any group.
class TeamInline(admin.StackedInline):
    model = Team
    can_delete = False
    filter_horizontal = ["admins"]
    verbose_name_plural = "team"


class TeamDefaultGrantInline(admin.TabularInline):
    model = TeamDefaultGrant
    extra = 0
    verbose_name_plural = "defaults (the team's level on every object of a type; private objects excepted)"


class TeamGroupAdmin(GroupAdmin):
    inlines = [TeamInline, TeamDefaultGrantInline]


admin.site.unregister(Group)
admin.site.register(Group, TeamGroupAdmin)
