"""Admin for the gateway's own tables: usage records the database refused (dead letters)."""

import json

from django.contrib import admin
from django.utils.html import format_html

from gateway.models import UsageDeadLetter


@admin.register(UsageDeadLetter)
class UsageDeadLetterAdmin(admin.ModelAdmin):
    """Read only: the worker parks these (gateway.usage.services); they are billing evidence,
    so nobody edits or deletes them here."""

    list_display = ("parked_at", "request_id", "tenant_id", "short_reason")
    search_fields = ("request_id", "reason")
    date_hierarchy = "parked_at"
    fields = ("parked_at", "request_id", "tenant_id", "reason", "record_pretty")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="reason")
    def short_reason(self, obj: UsageDeadLetter) -> str:
        return obj.reason if len(obj.reason) <= 120 else obj.reason[:119] + "…"

    @admin.display(description="record")
    def record_pretty(self, obj: UsageDeadLetter) -> str:
        try:
            text = json.dumps(json.loads(obj.record), indent=2, sort_keys=True)
        except ValueError:
            text = obj.record
        return format_html("<pre>{}</pre>", text)
