"""Load Acme's demo incidents: one awaiting support's first answer (its deadline running),
one that support answered and that waits for Acme's answer. Idempotent."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, User
from support import services
from support.models import Incident

# subject, severity, opened (hours ago), description, support's answer (hours ago, text)
INCIDENTS = [
    (
        "Quotes PDF shows the wrong currency",
        Incident.Severity.P3,
        30,
        "Since this morning every quote we print shows EUR instead of USD, although the "
        "account and the quotes are in USD. We can send the quotes by hand meanwhile.",
        (26, "Could you send us the number of one of those quotes and the template it uses?"),
    ),
    (
        "Mail sync stopped for two users",
        Incident.Severity.P2,
        3,
        "Mia's and Ben's mailboxes have not synced since 7:00; the others work. We have "
        "already reconnected the accounts under Settings > Mail.",
        None,
    ),
]


class Command(BaseCommand):
    help = "Create Acme's demo support incidents (safe to run again)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Refusing to load the demo incidents with DEBUG off.")
        account = Account.objects.filter(name="Acme Corporation").first()
        agent = User.objects.filter(email="support.agent@example.com").first()
        if account is None or agent is None:
            raise CommandError("Run demo_data and demo_billing first.")
        if Incident.objects.filter(account=account).exists():
            self.stdout.write(self.style.SUCCESS("Demo incidents ready (0 new objects)."))
            return
        contact = services.support_contact(account)
        if contact is None:
            raise CommandError("Acme has no designated support contact.")
        now = timezone.now()
        with transaction.atomic():
            for subject, severity, opened, description, answer in INCIDENTS:
                incident = services.incident_open(
                    actor=contact.user,
                    account=account,
                    subject=subject,
                    description=description,
                    severity=severity,
                    now=now - timedelta(hours=opened),
                )
                if answer is not None:
                    hours, body = answer
                    services.incident_respond(
                        actor=agent,
                        incident=incident,
                        body=body,
                        wait=True,
                        now=now - timedelta(hours=hours),
                    )
        states = ", ".join(
            f"{i.number} {i.get_state_display().lower()}"
            for i in Incident.objects.filter(account=account).order_by("pk")
        )
        self.stdout.write(
            self.style.SUCCESS(f"Demo incidents ready ({len(INCIDENTS)} new objects): {states}.")
        )
