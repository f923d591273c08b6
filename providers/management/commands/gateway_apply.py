"""`manage.py gateway_apply FILE.yaml`: apply a config file (see providers/services.py)."""

from pathlib import Path

import yaml
from django.core.management.base import CommandError

from accounts.audit import AuditedCommand
from accounts.services import ServiceError
from providers.services import config_apply


class Command(AuditedCommand):
    help = "Create or update providers, models, routes and tenants from a YAML file."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, **options):
        path: Path = options["file"]
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise CommandError(f"{path} is not valid YAML: {exc}") from None
        try:
            summary = config_apply(data={} if data is None else data)
        except ServiceError as exc:
            raise CommandError(f"{path}: {exc}") from None
        self.stdout.write(f"Applied {path}:")
        for section, counts in summary.items():
            line = ", ".join(f"{n} {what}" for what, n in counts.items())
            self.stdout.write(f"  {section}: {line}")
