"""`manage.py service_token create|revoke|list`: tokens for the admin REST API.

`create` prints the secret once, alone on the last line.
"""

from datetime import UTC, datetime, timedelta

from django.core.management.base import CommandError
from django.utils import timezone

from accounts.audit import AuditedCommand
from accounts.models import ServiceToken, Tenant
from accounts.selectors import tenant_get
from accounts.service_tokens import service_token_create, service_token_revoke
from accounts.services import ServiceError


def expiry(value: str) -> datetime:
    """`30d` (days from now) or an ISO 8601 date or time (UTC when no offset is given)."""
    if value.endswith("d") and value[:-1].isdigit():
        return timezone.now() + timedelta(days=int(value[:-1]))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--expires {value!r}: give days (30d) or an ISO date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(AuditedCommand):
    help = "Create, revoke or list service tokens for the admin REST API (/api/v1/admin)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="create a token; its secret is printed once")
        create.add_argument("--name", required=True, help="what the token is for")
        create.add_argument("--tenant", help="scope it to this tenant (default: platform-wide)")
        create.add_argument("--expires", help="30d (days from now) or an ISO date")
        revoke = actions.add_parser("revoke", help="revoke a token by its prefix")
        revoke.add_argument("prefix", help="the token's prefix (tgs_AbCd1234)")
        actions.add_parser("list", help="list tokens (never their secrets)")

    def handle(self, *args, **options):
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options):
        try:
            tenant = tenant_get(name=options["tenant"]) if options["tenant"] else None
            expires_at = expiry(options["expires"]) if options["expires"] else None
            token, secret = service_token_create(
                name=options["name"], tenant=tenant, expires_at=expires_at
            )
        except (ServiceError, Tenant.DoesNotExist) as exc:
            raise CommandError(str(exc)) from None
        scope = f"tenant {tenant.name}" if tenant else "platform-wide"
        expires = token.expires_at.isoformat() if token.expires_at else "never"
        self.stdout.write(f"Created service token {token.prefix} ({token.name}), {scope}")
        self.stdout.write(f"  expires: {expires}")
        self.stdout.write("The secret is shown only now; store it safely:")
        self.stdout.write(secret)

    def _revoke(self, options):
        try:
            token = ServiceToken.objects.get(prefix=options["prefix"].strip())
        except ServiceToken.DoesNotExist:
            raise CommandError(f"no service token has prefix {options['prefix']!r}") from None
        token = service_token_revoke(token=token)
        self.stdout.write(f"Revoked service token {token.prefix} at {token.revoked_at.isoformat()}")

    def _list(self, options):
        for token in ServiceToken.objects.select_related("tenant").order_by("created_at"):
            scope = f"tenant {token.tenant.name}" if token.tenant else "platform"
            state = "revoked" if token.revoked_at else "active" if token.is_active else "expired"
            used = token.last_used_at.isoformat() if token.last_used_at else "never"
            self.stdout.write(f"{token.prefix}  {token.name}  {scope}  {state}  last used {used}")
