"""Load the demo data. Idempotent: a second run changes nothing."""

from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.models import Account, Membership, Reseller, User

DEMO_PASSWORD = "demo-portal-2026"  # noqa: S105 - printed for the demo, local only

STAFF = [
    ("admin@example.com", "Ada Admin", "Administrator", True),
    ("billing.reviewer@example.com", "Bill Reviewer", "Billing reviewer", False),
    ("support.agent@example.com", "Sam Support", "Support agent", False),
]

# account name, timezone, currency, seats paid, reseller, members (email, name, role, seat)
ACCOUNTS = [
    (
        "Acme Corporation",
        "America/New_York",
        "USD",
        5,
        None,
        [
            ("owner@acme.example", "Olivia Owner", "owner", True),
            ("billing@acme.example", "Ben Billing", "billing_admin", True),
            ("member@acme.example", "Mia Member", "member", True),
        ],
    ),
    (
        "Globex GmbH",
        "Europe/Berlin",
        "EUR",
        3,
        "Northwind Partners",
        [
            ("owner@acme.example", "Olivia Owner", "member", False),
            ("owner@globex.example", "Gustav Owner", "owner", True),
        ],
    ),
    (
        "Initech (on-premise)",
        "America/Chicago",
        "USD",
        1,
        None,
        [("owner@initech.example", "Ingrid Owner", "owner", True)],
    ),
]


class Command(BaseCommand):
    help = "Create the demo staff, customer accounts and logins (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Load the demo logins (with their published password) even with DEBUG off.",
        )

    def handle(self, *args, allow_production=False, **options):
        from django.conf import settings

        if not settings.DEBUG and not allow_production:
            raise CommandError(
                "Refusing to load demo logins with DEBUG off: their password is published. "
                "Pass --allow-production if this really is a demo site."
            )
        with transaction.atomic():
            created = self._load()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({created} new objects)."))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for email, _, group, _ in STAFF:
            self.stdout.write(
                f"  staff     {email:32} {group} (staff console at /admin/; "
                "sets up two-factor authentication on first visit)"
            )
        seen = set()
        for name, *_, members in ACCOUNTS:
            for email, _, role, _ in members:
                if email not in seen:
                    seen.add(email)
                    self.stdout.write(f"  customer  {email:32} {role} of {name}")

    def _user(self, email, full_name, **extra):
        user = User.objects.filter(email__iexact=email).first()
        created = user is None
        if created:
            user = User.objects.create_user(
                email=email, password=DEMO_PASSWORD, full_name=full_name, **extra
            )
        EmailAddress.objects.get_or_create(
            user=user, email=email, defaults={"primary": True, "verified": True}
        )
        return user, created

    def _load(self) -> int:
        created = 0
        for email, name, group, superuser in STAFF:
            user, new = self._user(email, name, is_staff=True, is_superuser=superuser)
            created += new
            user.groups.add(Group.objects.get(name=group))
        for name, tz, currency, seats, reseller_name, members in ACCOUNTS:
            reseller = None
            if reseller_name:
                reseller, new = Reseller.objects.get_or_create(
                    name=reseller_name,
                    defaults={
                        "support_email": "support@northwind.example",
                        "website": "https://northwind.example",
                    },
                )
                created += new
            owner_email, owner_name, _, _ = next(m for m in members if m[2] == "owner")
            owner, new = self._user(owner_email, owner_name)
            created += new
            account = Account.objects.filter(name=name).first()
            if account is None:
                account = services.account_create(
                    owner=owner,
                    name=name,
                    timezone_name=tz,
                    currency=currency,
                    seats_paid=seats,
                    reseller=reseller,
                )
                created += 1
            for email, full_name, role, seat in members:
                user, new = self._user(email, full_name)
                created += new
                _, new = Membership.objects.get_or_create(
                    account=account, user=user, defaults={"role": role, "has_seat": seat}
                )
                created += new
        return created
