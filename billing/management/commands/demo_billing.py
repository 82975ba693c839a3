"""Load the demo catalogue (a product of every kind) and the demo accounts' plans. Idempotent."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Account, User
from billing.catalogue import price_terms_refusal
from billing.models import Licence, Price, Product, Subscription
from billing.selectors import account_today
from billing.services import payment_record_manual, purchase_place

# account name, product code, currency
PLANS = [
    ("Acme Corporation", "professional-cloud", "USD"),
    ("Globex GmbH", "enterprise-cloud", "EUR"),
]

# code, name, kind, edition, deployment, units, [(currency, amount, scheme, interval)]
CATALOGUE = [
    (
        "startup",
        "1CRM Startup Edition",
        "perpetual_license",
        "startup",
        "on_premise",
        None,
        [("USD", "0", "flat", "one_off")],
    ),
    (
        "professional-cloud",
        "Professional (cloud)",
        "subscription",
        "professional",
        "cloud",
        None,
        [
            ("USD", "29", "per_seat", "month"),
            ("USD", "290", "per_seat", "year"),
            ("EUR", "27", "per_seat", "month"),
        ],
    ),
    (
        "enterprise-cloud",
        "Enterprise (cloud)",
        "subscription",
        "enterprise",
        "cloud",
        None,
        [
            ("USD", "49", "per_seat", "month"),
            ("USD", "490", "per_seat", "year"),
            ("EUR", "45", "per_seat", "month"),
        ],
    ),
    (
        "professional-licence",
        "Professional licence (on-premise)",
        "perpetual_license",
        "professional",
        "on_premise",
        None,
        [("USD", "195", "per_seat", "one_off")],
    ),
    (
        "support-contract",
        "Support and updates (on-premise)",
        "support_contract",
        "",
        "on_premise",
        None,
        [("USD", "60", "per_seat", "year")],
    ),
    (
        "whatsapp-api",
        "WhatsApp API integration",
        "premium_feature",
        "",
        "cloud",
        None,
        [("USD", "15", "flat", "month")],
    ),
    ("sms-usage", "SMS messages", "usage", "", "cloud", None, [("USD", "0.04", "flat", "month")]),
    (
        "credits-100k",
        "100,000 sending credits",
        "credit_pack",
        "",
        "cloud",
        100_000,
        [("USD", "100", "flat", "one_off")],
    ),
    (
        "storage-50gb",
        "Extra storage, 50 GB",
        "quota_addon",
        "",
        "cloud",
        None,
        [("USD", "20", "flat", "one_off")],
    ),
    (
        "aurius-plugin",
        "Aurius AI plugin",
        "plugin",
        "",
        "any",
        None,
        [("USD", "49", "flat", "one_off")],
    ),
    (
        "wordpress-portal",
        "1CRM Customer Connection Portal for WordPress",
        "plugin",
        "",
        "any",
        None,
        [("USD", "295", "flat", "one_off")],
    ),
    (
        "migration",
        "Data migration service",
        "service",
        "",
        "any",
        None,
        [("USD", "450", "flat", "one_off")],
    ),
    (
        "extra-incident",
        "Extra support incident",
        "support_incident",
        "",
        "any",
        None,
        [("USD", "150", "flat", "one_off")],
    ),
]


class Command(BaseCommand):
    help = "Create the demo catalogue and plans (safe to run again)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Refusing to load the demo billing data with DEBUG off.")
        created = 0
        with transaction.atomic():
            for code, name, kind, edition, deployment, units, prices in CATALOGUE:
                product, new = Product.objects.get_or_create(
                    code=code,
                    defaults={
                        "name": name,
                        "kind": kind,
                        "edition": edition,
                        "deployment": deployment,
                        "units": units,
                    },
                )
                created += new
                for currency, amount, scheme, interval in prices:
                    refusal = price_terms_refusal(
                        kind=kind, edition=edition, interval=interval, scheme=scheme, amount=amount
                    )
                    if refusal:
                        raise CommandError(f"{code}: {refusal}")
                    _, new = Price.objects.get_or_create(
                        product=product,
                        currency=currency,
                        interval=interval,
                        scheme=scheme,
                        is_active=True,
                        defaults={"amount": Decimal(amount)},
                    )
                    created += new
            # 1CRM terms: the WordPress portal works only with Professional or Enterprise.
            Product.objects.filter(code="wordpress-portal").update(requires_edition="professional")
            created += self._plans()
            created += self._licences()
        self.stdout.write(self.style.SUCCESS(f"Demo billing ready ({created} new objects)."))

    def _plans(self) -> int:
        """A monthly per-seat plan for each demo account, its quantity the seats it has."""
        created = 0
        for name, code, currency in PLANS:
            account = Account.objects.filter(name=name).first()
            if account is None or Subscription.objects.filter(account=account).exists():
                continue
            today = account_today(account)
            start = today.replace(day=1)
            end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
            Subscription.objects.create(
                account=account,
                price=Price.objects.get(
                    product__code=code, currency=currency, interval="month", is_active=True
                ),
                quantity=account.seats_paid,
                current_period_start=start,
                current_period_end=end,
            )
            created += 1
        return created

    def _licences(self) -> int:
        """Initech runs on-premise: 5 Professional licences with their first year of support."""
        account = Account.objects.filter(name="Initech (on-premise)").first()
        if account is None or Licence.objects.filter(account=account).exists():
            return 0
        owner = account.memberships.filter(role="owner").first().user
        price = Price.objects.get(product__code="professional-licence", is_active=True)
        order = purchase_place(
            actor=owner, account=account, items=[{"price": price.pk, "quantity": 5}]
        )
        staff = User.objects.filter(is_superuser=True).order_by("pk").first()
        payment_record_manual(actor=staff, order=order, reference="DEMO-WIRE-001")
        return 1
