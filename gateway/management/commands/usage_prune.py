"""`manage.py usage_prune`: the retention task run once, for deployments without Celery beat
(the quick start) or to work off a backlog now."""

from django.core.management.base import BaseCommand

from gateway.usage.retention import MAX_BATCHES, usage_prune


class Command(BaseCommand):
    help = (
        "Delete raw usage records older than TOLLGATE_USAGE_RETENTION_DAYS and hourly roll-ups "
        "older than TOLLGATE_HOURLY_USAGE_RETENTION_DAYS, in batches; daily roll-ups stay."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-batches",
            type=int,
            default=MAX_BATCHES,
            help=f"batches of each kind to delete at most (default {MAX_BATCHES})",
        )

    def handle(self, *args, **options):
        pruned = usage_prune(max_batches=max(1, options["max_batches"]))
        self.stdout.write(
            f"Deleted {pruned.records} usage records and {pruned.hourly} hourly roll-ups."
        )
