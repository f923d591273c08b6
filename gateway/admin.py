"""Admin for the gateway's own tables: usage records the database refused (dead letters)."""

import json

from django.contrib import admin
from django.utils.html import format_html

from accounts.admin import ReadOnlyAdmin, pretty_json
from gateway.models import UsageDeadLetter


@admin.register(UsageDeadLetter)
class UsageDeadLetterAdmin(ReadOnlyAdmin):
    """Read only: the worker parks these (gateway.usage.services); they are billing evidence,
    so nobody edits or deletes them here."""

    list_display = ("parked_at", "request_id", "tenant_id", "short_reason")
    search_fields = ("request_id", "reason")
    date_hierarchy = "parked_at"
    fields = ("parked_at", "request_id", "tenant_id", "reason", "record_pretty")
    readonly_fields = fields

    @admin.display(description="reason")
    def short_reason(self, obj: UsageDeadLetter) -> str:
        return obj.reason if len(obj.reason) <= 120 else obj.reason[:119] + "…"

    @admin.display(description="record")
    def record_pretty(self, obj: UsageDeadLetter) -> str:
        try:
            return pretty_json(json.loads(obj.record))
        except ValueError:
            return format_html("<pre>{}</pre>", obj.record)


from gateway.alerts import admin as alerts_admin  # noqa: E402, F401  (registers the alerts' admin)
