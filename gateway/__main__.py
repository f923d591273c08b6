"""`python -m gateway <command>` (or `tollgate <command>` once installed): Django's manage.py
for an installed Tollgate, e.g. `python -m gateway migrate`, `python -m gateway gateway_apply
tollgate.yaml`. Serving is `python -m gateway.server` (production) or `python -m
gateway.devserver gateway.asgi:application` (the quick start's daphne)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["tollgate", *sys.argv[1:]])


if __name__ == "__main__":
    main()
