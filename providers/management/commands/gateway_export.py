"""`manage.py gateway_export [FILE.yaml]`: the configuration as a file `gateway_apply` reads.

Applying the export changes nothing. Credentials are never written: a provider's is named by
its `api_key_env` when it was read from one, otherwise left out (applying keeps the stored one);
extra headers are left out likewise (see providers/selectors.py).
"""

from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from providers.selectors import config_export


class Command(BaseCommand):
    help = "Write providers, models, routes and tenants as a YAML file for gateway_apply."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, nargs="?", help="Where to write (default: stdout)")

    def handle(self, *args, **options):
        text = yaml.safe_dump(config_export(), sort_keys=False, allow_unicode=True)
        path: Path | None = options["file"]
        if path is None:
            self.stdout.write(text, ending="")
            return
        try:
            path.write_text(text)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None
        self.stdout.write(f"Wrote {path}")
