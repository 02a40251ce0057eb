from django.contrib import admin

from portal.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    # Digests are useless to read and must not be edited by hand.
    readonly_fields = ["digest", "prefix", "created_at", "last_used_at"]
