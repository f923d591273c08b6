"""`manage.py create_tenant NAME [--models a,b]`."""

from django.core.management.base import CommandError

from accounts.audit import AuditedCommand
from accounts.services import ServiceError, tenant_create


def name_list(value: str) -> list[str]:
    """`a, b,c` -> ["a", "b", "c"]: the comma-separated lists our commands take."""
    return [part.strip() for part in value.split(",") if part.strip()]


class Command(AuditedCommand):
    help = "Create a tenant, optionally restricted to some models."

    def add_arguments(self, parser):
        parser.add_argument("name", help="tenant slug, e.g. acme")
        parser.add_argument("--display-name", default="")
        parser.add_argument(
            "--models", type=name_list, help="comma-separated model names (default: all enabled)"
        )

    def handle(self, *args, **options):
        try:
            tenant = tenant_create(
                name=options["name"], display_name=options["display_name"], models=options["models"]
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        models = ", ".join(tenant.allowed_models.values_list("name", flat=True))
        self.stdout.write(
            f"Created tenant {tenant.name} (models: {models or 'every enabled model'})"
        )
