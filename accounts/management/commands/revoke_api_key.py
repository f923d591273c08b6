"""`manage.py revoke_api_key KEY` (the shown prefix or the whole secret)."""

from django.core.management.base import CommandError

from accounts.audit import AuditedCommand
from accounts.models import ApiKey
from accounts.selectors import api_key_find
from accounts.services import api_key_revoke


class Command(AuditedCommand):
    help = "Revoke an API key, given its prefix (tg_AbCd1234) or its whole secret."

    def add_arguments(self, parser):
        parser.add_argument("key", help="the key's prefix or whole secret")

    def handle(self, *args, **options):
        try:
            key = api_key_find(ref=options["key"])
        except ApiKey.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        key = api_key_revoke(key=key)
        self.stdout.write(
            f"Revoked API key {key.prefix} of tenant {key.tenant.name} "
            f"at {key.revoked_at.isoformat()}"
        )
