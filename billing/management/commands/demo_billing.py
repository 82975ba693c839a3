"""Load the demo catalogue (a product of every kind) and the demo accounts' plans, with
months of Acme's plan history. Idempotent."""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, User
from billing.catalogue import price_terms_refusal
from billing.models import Licence, Order, Price, Product, Subscription
from billing.periods import add_months
from billing.selectors import account_today
from billing.services import (
    payment_record_manual,
    purchase_place,
    subscription_change_seats,
    subscription_renew,
    subscription_start,
)

# Acme's plan renewed this many days ago for the last time: the later demo commands
# (refunds, then the marketplace) date their payments after it, so that invoice numbers
# follow their dates.
LAST_RENEWAL_DAYS_AGO = 25
HISTORY_MONTHS = 4

# account name, product code, currency (Acme's plan is started by _acme_history)
PLANS = [
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
            created += self._licences()
            created += self._plans()
            created += self._acme_history()
        self.stdout.write(self.style.SUCCESS(f"Demo billing ready ({created} new objects)."))

    def _plans(self) -> int:
        """Globex's plan, sold by its reseller: no portal service starts one, so the row
        is written here, its quantity the seats Globex has."""
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
        # Bought before Acme's history begins (at most 28 days and HISTORY_MONTHS ago), so
        # that invoice numbers follow their dates.
        bought = timezone.now() - timedelta(days=31 * HISTORY_MONTHS + 40)
        order = purchase_place(
            actor=owner, account=account, items=[{"price": price.pk, "quantity": 5}], now=bought
        )
        staff = User.objects.filter(is_superuser=True).order_by("pk").first()
        payment_record_manual(actor=staff, order=order, reference="DEMO-WIRE-001", now=bought)
        return 1

    def _acme_history(self) -> int:
        """Acme on Professional (cloud) for months: 4 seats, a fifth added in the second
        month, each renewal paid by bank transfer the day it was ordered."""
        account = Account.objects.filter(name="Acme Corporation").first()
        if account is None or Subscription.objects.filter(account=account).exists():
            return 0
        owner = account.memberships.get(user__email="owner@acme.example").user
        staff = User.objects.filter(is_superuser=True).order_by("pk").first()
        tz = account.tzinfo
        last = account_today(account) - timedelta(days=LAST_RENEWAL_DAYS_AGO)
        # Periods start on a day every month has.
        last -= timedelta(days=max(0, last.day - 28))
        start = add_months(last, -HISTORY_MONTHS)

        def at(day, hour):
            return timezone.make_aware(datetime.combine(day, time(hour)), tz)

        def pay(order, when, reference):
            if order is not None and order.status != Order.Status.PAID:
                payment_record_manual(actor=staff, order=order, reference=reference, now=when)

        price = Price.objects.get(
            product__code="professional-cloud", currency="USD", interval="month", is_active=True
        )
        subscription, order = subscription_start(
            actor=owner, account=account, price=price, quantity=4, now=at(start, 10)
        )
        pay(order, at(start, 15), "DEMO-WIRE-ACME-1")
        renewal = 0
        while subscription.current_period_end <= last:
            renewal += 1
            period_start = subscription.current_period_end
            subscription = subscription_renew(subscription=subscription, now=at(period_start, 9))
            renewal_order = (
                Order.objects.filter(account=account, lines__subscription=subscription)
                .exclude(status=Order.Status.PAID)
                .order_by("-pk")
                .first()
            )
            pay(renewal_order, at(period_start, 14), f"DEMO-WIRE-ACME-R{renewal}")
            subscription.refresh_from_db()
            if renewal == 1:
                # A seat for a new colleague, ten days into the second month.
                when = at(period_start + timedelta(days=10), 11)
                _, _, seat_order = subscription_change_seats(
                    actor=owner, subscription=subscription, quantity=5, now=when
                )
                pay(seat_order, when + timedelta(hours=3), "DEMO-WIRE-ACME-SEAT")
                subscription.refresh_from_db()
        return 1
