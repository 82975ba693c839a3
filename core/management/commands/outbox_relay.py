"""Publish the outbox's pending jobs now (the beat job does it every minute)."""

from django.core.management.base import BaseCommand

from core import outbox


class Command(BaseCommand):
    help = "Publish the pending jobs of the outbox to the broker, oldest first."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500)

    def handle(self, *args, limit, **options):
        published = outbox.relay(limit=limit)
        self.stdout.write(f"{published} job(s) published")
