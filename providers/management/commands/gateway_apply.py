"""`manage.py gateway_apply FILE.yaml [--prune] [--dry-run] [--diff]`: apply a config file.

What a file means (fields left out are kept, `--prune` deletes what a section does not name):
providers/services.py, `config_apply`. Every problem of the file is printed at once and nothing
is applied; `--dry-run` prints each change field by field and writes nothing; `--diff` prints
the same list and applies it.
"""

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
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Delete providers, models and tenants that a section of the file does not "
            "name (sections the file leaves out are not touched).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print every change, field by field, and write nothing.",
        )
        parser.add_argument(
            "--diff", action="store_true", help="Print every change, field by field, and apply."
        )

    def handle(self, *args, **options):
        path: Path = options["file"]
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise CommandError(f"{path} is not valid YAML: {exc}") from None
        try:
            applied = config_apply(
                data={} if data is None else data,
                prune=options["prune"],
                dry_run=options["dry_run"],
            )
        except ServiceError as exc:
            raise CommandError(f"{path}: {exc}") from None
        if options["dry_run"] or options["diff"]:
            for line in applied.changes or ["no changes"]:
                self.stdout.write(f"  {line}")
        verb = "Would apply" if applied.dry_run else "Applied"
        self.stdout.write(f"{verb} {path}:")
        for section, counts in applied.summary.items():
            line = ", ".join(f"{n} {what}" for what, n in counts.items())
            self.stdout.write(f"  {section}: {line}")
