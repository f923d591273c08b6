"""`manage.py rotate_api_key KEY [--grace-hours N]`: the new secret alone on the last line."""

from django.core.management.base import CommandError

from accounts.audit import AuditedCommand
from accounts.models import ApiKey
from accounts.selectors import api_key_find
from accounts.services import DEFAULT_ROTATION_GRACE_SECONDS, ServiceError, api_key_rotate


class Command(AuditedCommand):
    help = (
        "Give an API key a new secret. The old secret keeps working during the grace period "
        "(default 24 hours), then is refused. The new secret is printed once, on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("key", help="the key's prefix or whole secret")
        parser.add_argument(
            "--grace-hours",
            type=float,
            default=DEFAULT_ROTATION_GRACE_SECONDS / 3600,
            help="how long the old secret keeps working (0: stops at once)",
        )

    def handle(self, *args, **options):
        try:
            key = api_key_find(ref=options["key"])
            secret = api_key_rotate(key=key, grace_seconds=round(options["grace_hours"] * 3600))
        except (ApiKey.DoesNotExist, ServiceError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Rotated API key {key.previous_prefix} of tenant {key.tenant.name}: "
            f"new prefix {key.prefix}"
        )
        self.stdout.write(f"  old secret works until: {key.previous_expires_at.isoformat()}")
        self.stdout.write("The new secret is shown only now; store it safely:")
        self.stdout.write(secret)
