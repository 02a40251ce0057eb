from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import router, transaction

from portal import services
from portal.models import ApiToken, AuditEvent, Team, TeamDefaultGrant

# Every change made here is audited as the services audit theirs (services.audit_*), in the
# admin's transaction: each ModelAdmin that changes users, teams or tokens compares the rows
# before and after its save, and records deletions before it deletes.

User = get_user_model()


def _atomic(model):
    return transaction.atomic(using=router.db_for_write(model))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made by their owners (token page, API) and revoked by the action below,
    through services.api_token_revoke; they are never edited (an edit could un-revoke one)."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_revoke_permission(self, request):
        return request.user.has_perm("portal.change_apitoken")

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        with _atomic(ApiToken):
            for token in queryset.select_related("user"):
                services.api_token_revoke(user=token.user, token_id=token.pk, actor=request.user)

    # Deletable, so that deleting a user who has tokens works here; a deletion is audited.
    def delete_model(self, request, obj):
        with _atomic(ApiToken):
            services.audit_token(request.user, "token.deleted", obj, before=services.token_snapshot(obj))
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with _atomic(ApiToken):
            for token in queryset.select_related("user"):
                services.audit_token(request.user, "token.deleted", token, before=services.token_snapshot(token))
            super().delete_queryset(request, queryset)


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


def _team_state(team: Group) -> dict[str, Any]:
    """What the group page edits, to compare before and after a save."""
    profile = Team.objects.filter(group=team).first()
    return {
        "fields": {
            **services.team_snapshot(team),
            "permissions": sorted(f"{app}.{codename}" for app, codename in _permission_names(team.permissions)),
        },
        "admins": {user.pk: user for user in profile.admins.all()} if profile else {},
        "defaults": {row.resource_type: row for row in team.default_grants.select_related("team")},
    }


def _permission_names(permissions) -> list[tuple[str, str]]:
    return list(permissions.values_list("content_type__app_label", "codename"))


class TeamGroupAdmin(GroupAdmin):
    inlines = [TeamInline, TeamDefaultGrantInline]

    def save_model(self, request, obj, form, change):
        # The inlines are saved later (save_related): note the whole team as it was now.
        obj._audit_before = _team_state(Group.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        team, actor = form.instance, request.user
        before, after = getattr(team, "_audit_before", None), _team_state(team)
        if before is None:
            services.audit_team(actor, "team.created", team, after=after["fields"])
            before = {"admins": {}, "defaults": {}}
        else:
            changed = [key for key in after["fields"] if after["fields"][key] != before["fields"][key]]
            if changed:
                services.audit_team(
                    actor,
                    "team.updated",
                    team,
                    before={key: before["fields"][key] for key in changed},
                    after={key: after["fields"][key] for key in changed},
                )
        for pk in sorted(after["admins"].keys() - before["admins"].keys()):
            services.audit_team_admin_changed(actor, team, after["admins"][pk], True)
        for pk in sorted(before["admins"].keys() - after["admins"].keys()):
            services.audit_team_admin_changed(actor, team, before["admins"][pk], False)
        for resource_type in sorted(before["defaults"].keys() | after["defaults"].keys()):
            old, new = before["defaults"].get(resource_type), after["defaults"].get(resource_type)
            if new is None:
                services.audit_team_default(
                    actor, "team_default.removed", old, before=services.team_default_snapshot(old)
                )
            elif old is None or old.level != new.level:
                services.audit_team_default(
                    actor,
                    "team_default.set",
                    new,
                    before=services.team_default_snapshot(old) if old else None,
                    after=services.team_default_snapshot(new),
                )

    def delete_model(self, request, obj):
        with _atomic(Group):
            services.audit_team_deleted(request.user, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with _atomic(Group):
            for team in queryset:
                services.audit_team_deleted(request.user, team)
            super().delete_queryset(request, queryset)


admin.site.unregister(Group)
admin.site.register(Group, TeamGroupAdmin)


# ---------------------------------------------------------------- users


def _user_fields(user) -> dict[str, Any]:
    return {
        "username": user.get_username(),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_admin": user.is_superuser,
    }


def _user_relations(user) -> dict[str, Any]:
    return {
        "teams": {team.pk: team for team in user.groups.all()},
        "permissions": sorted(f"{app}.{codename}" for app, codename in _permission_names(user.user_permissions)),
    }


class AuditedUserAdmin(UserAdmin):
    """Django's user admin, audited: user.created, user.updated (fields and permissions),
    user.admin_changed, user.password_changed, user.deleted, and team.member_added/removed
    for the teams picked on the user page."""

    def save_model(self, request, obj, form, change):
        before = _user_fields(User.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        if before is None:
            services.audit_user(request.user, "user.created", obj, after=services.user_snapshot(obj))
            return
        after = _user_fields(obj)
        if before["is_admin"] != after["is_admin"]:
            services.audit_user(
                request.user,
                "user.admin_changed",
                obj,
                before={"is_admin": before.pop("is_admin")},
                after={"is_admin": after.pop("is_admin")},
            )
        changed = [key for key in after if after[key] != before[key]]
        if changed:
            services.audit_user(
                request.user,
                "user.updated",
                obj,
                before={key: before[key] for key in changed},
                after={key: after[key] for key in changed},
            )

    def save_related(self, request, form, formsets, change):
        user, actor = form.instance, request.user
        before = _user_relations(user) if change else {"teams": {}, "permissions": []}
        super().save_related(request, form, formsets, change)
        after = _user_relations(user)
        name = user.get_username()
        for pk in sorted(after["teams"].keys() - before["teams"].keys()):
            services.audit_team(actor, "team.member_added", after["teams"][pk], after={"user": name})
        for pk in sorted(before["teams"].keys() - after["teams"].keys()):
            services.audit_team(actor, "team.member_removed", before["teams"][pk], before={"user": name})
        if before["permissions"] != after["permissions"]:
            services.audit_user(
                actor,
                "user.updated",
                user,
                before={"permissions": before["permissions"]},
                after={"permissions": after["permissions"]},
            )

    def user_change_password(self, request, id, form_url=""):
        # Django's view saves the form itself: compare the stored hash around it (the hash
        # is never written to the log, only that it changed).
        with _atomic(User):
            user = self.get_object(request, unquote(id))  # None for a missing user: Django's view says 404
            response = super().user_change_password(request, id, form_url)
            if user is not None and self.get_object(request, unquote(id)).password != user.password:
                services.audit_user(request.user, "user.password_changed", user)
        return response

    def delete_model(self, request, obj):
        with _atomic(User):
            services.audit_user_deleted(request.user, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with _atomic(User):
            for user in queryset:
                services.audit_user_deleted(request.user, user)
            super().delete_queryset(request, queryset)


admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)


# ---------------------------------------------------------------- the audit log


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only: events are append-only (see portal.models.AuditEvent)."""

    list_display = [
        "timestamp",
        "actor_username",
        "action",
        "object_type",
        "object_name",
        "resource_type",
        "resource_id",
    ]
    list_filter = ["action", "object_type"]
    search_fields = ["object_name", "actor_username"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
