"""Read-only admin views of the registry.

Every change goes through registry.services (permissions, locking, stage history), so the
admin shows registry objects and changes none of them.
"""

from django.contrib import admin

from registry.models import Comment, ModelAlias, ModelVersion, RegisteredModel, StageTransition


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyAdmin):
    list_display = ("name", "owner", "last_version_number", "last_updated_timestamp")
    search_fields = ("name",)


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("registered_model", "version", "current_stage", "owner", "run", "logged_model", "storage_location")
    list_filter = ("current_stage",)
    search_fields = ("registered_model__name", "source", "run__id")
    list_select_related = ("registered_model", "owner")


@admin.register(ModelAlias)
class ModelAliasAdmin(ReadOnlyAdmin):
    list_display = ("registered_model", "alias", "model_version")
    list_select_related = ("registered_model", "model_version")


@admin.register(StageTransition)
class StageTransitionAdmin(ReadOnlyAdmin):
    list_display = ("registered_model", "version_number", "from_stage", "to_stage", "actor", "timestamp", "reason")
    list_select_related = ("registered_model", "actor")


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdmin):
    list_display = ("registered_model", "model_version", "author", "created_at")
    list_select_related = ("registered_model", "model_version", "author")
