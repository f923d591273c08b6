"""`manage.py create_api_key --tenant NAME ...`: prints the new secret alone on the last line."""

from django.core.management.base import CommandError

from accounts.audit import AuditedCommand
from accounts.management.commands.create_tenant import name_list
from accounts.models import Tenant
from accounts.selectors import tenant_get
from accounts.services import ServiceError, api_key_create


def limits_summary(row) -> str:
    """`rpm 60, tpm 100000, $25.00 monthly` or `none`."""
    parts = [f"{name} {getattr(row, name)}" for name in ("rpm", "tpm") if getattr(row, name)]
    if row.budget_usd is not None:
        parts.append(f"${row.budget_usd} {row.budget_period}")
    return ", ".join(parts) or "none"


class Command(AuditedCommand):
    help = "Create an API key for a tenant. The secret is printed once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant name")
        parser.add_argument("--name", default="", help="a label for people")
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument(
            "--models", type=name_list, help="comma-separated model names (default: the tenant's)"
        )
        parser.add_argument("--allow-debug", action="store_true")
        parser.add_argument("--rpm", type=int, default=None, help="requests per minute")
        parser.add_argument("--tpm", type=int, default=None, help="tokens per minute")
        parser.add_argument("--budget-usd", default=None, help="spend allowed per period, USD")
        parser.add_argument(
            "--budget-period", choices=("daily", "monthly"), default="monthly", help="UTC period"
        )

    def handle(self, *args, **options):
        try:
            key, secret = api_key_create(
                tenant=tenant_get(name=options["tenant"]),
                name=options["name"],
                expires_in_days=options["expires_in_days"],
                models=options["models"],
                allow_debug=options["allow_debug"],
                rpm=options["rpm"],
                tpm=options["tpm"],
                budget_usd=options["budget_usd"],
                budget_period=options["budget_period"],
            )
        except (ServiceError, Tenant.DoesNotExist) as exc:
            raise CommandError(str(exc)) from None
        models = ", ".join(key.allowed_models.values_list("name", flat=True))
        expires = key.expires_at.isoformat() if key.expires_at else "never"
        self.stdout.write(f"Created API key {key.prefix} for tenant {key.tenant.name}")
        self.stdout.write(f"  name: {key.name or '-'}")
        self.stdout.write(f"  models: {models or 'whatever the tenant may use'}")
        self.stdout.write(f"  expires: {expires}")
        self.stdout.write(f"  debug allowed: {'yes' if key.allow_debug else 'no'}")
        self.stdout.write(f"  limits: {limits_summary(key)}")
        self.stdout.write("The secret is shown only now; store it safely:")
        self.stdout.write(secret)
