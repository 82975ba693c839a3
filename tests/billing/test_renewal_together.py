"""A chunk renews its common case in one transaction (issue 16): what it writes must be
what renewing each subscription on its own writes (1CRM terms: an unpaid renewal lapses
the plan and puts the account on the licence screen), and what it leaves to the single
path must still be renewed."""

from datetime import date
from decimal import Decimal

import pytest

from accounts.models import Account, AuditEvent
from billing import selectors, services
from billing.models import (
    BillingDetails,
    Order,
    OrderLine,
    Payment,
    Price,
    Product,
    Subscription,
    TaxRate,
)
from billing.services.payments import idempotency_key
from core.models import OutboxMessage
from tests.billing.helpers import AFTER_END, usd
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

VARIANTS = [
    "plain",
    "taxed",
    "trialing",
    "downgrade_waiting",
    "plan_and_feature",
    "credit",
    "cancelling",
    "not_due",
    "suspended",
    "berlin",
]


@pytest.fixture
def prices(plan):
    TaxRate.objects.create(
        country="DE", name="VAT", rate=Decimal("19"), valid_from=date(2020, 1, 1)
    )
    starter = Price.objects.create(
        product=Product.objects.create(code="starter", name="Starter", kind="subscription"),
        currency="USD",
        amount=Decimal("12.00"),
        scheme="per_seat",
        interval="month",
    )
    feature = Price.objects.create(
        product=Product.objects.create(code="insights", name="Insights", kind="premium_feature"),
        currency="USD",
        amount=Decimal("9.50"),
        scheme="flat",
        interval="month",
    )
    return {"plan": plan, "starter": starter, "feature": feature}


def make(variant: str, prices: dict) -> list[Subscription]:
    """One account in the state `variant` names, with its due subscriptions."""
    account = AccountFactory(
        seats_paid=3,
        timezone="Europe/Berlin" if variant == "berlin" else "America/New_York",
        status="suspended_tos" if variant == "suspended" else "active",
    )

    def subscribe(price, **fields):
        return Subscription.objects.create(
            account=account,
            price=price,
            quantity=fields.pop("quantity", 3),
            current_period_start=date(2026, 3, 1),
            current_period_end=fields.pop("end", date(2026, 4, 1)),
            **fields,
        )

    if variant == "taxed":
        BillingDetails.objects.create(account=account, country="DE", legal_name="Kunde GmbH")
    if variant == "credit":
        services.ledger_credit(
            actor=None, account=account, amount=usd("20"), kind="seat_credit", description="x"
        )
    extra = {
        "trialing": {"status": "trialing"},
        "downgrade_waiting": {"pending_price": prices["starter"]},
        "cancelling": {"cancel_at_period_end": True},
        "not_due": {"end": date(2026, 4, 2)},
    }.get(variant, {})
    made = [subscribe(prices["plan"], **extra)]
    if variant == "plan_and_feature":
        made.append(subscribe(prices["feature"], quantity=1))
    return made


def written(account_id: int) -> dict:
    """Everything a renewal writes for one account, without ids, numbers and times that
    differ between two accounts renewed alike."""
    account = Account.objects.get(pk=account_id)
    orders = list(Order.objects.filter(account_id=account_id).order_by("pk"))
    numbers = {order.number: "<order>" for order in orders}
    lines = OrderLine.objects.filter(order__account_id=account_id).order_by("pk")
    payments = list(Payment.objects.filter(account_id=account_id).order_by("pk"))
    jobs = {
        tuple(message.args)
        for message in OutboxMessage.objects.filter(task="billing.tasks.request_payment")
    }

    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        if isinstance(value, str):
            for number, placeholder in numbers.items():
                value = value.replace(number, placeholder)
        return value

    audit = sorted(
        (event.object_type, event.action, repr(plain(event.changes)))
        for event in AuditEvent.objects.filter(account_id=account_id)
        .exclude(action__in=["account.created", "ledger.posted"])
        .order_by("pk")
    )
    subscriptions = Subscription.objects.filter(account_id=account_id).order_by("pk")
    return {
        "orders": [
            (o.currency, o.status, o.total, o.credit_applied, o.created_at, o.paid_at)
            for o in orders
        ],
        "lines": [
            (
                line.product_id,
                line.price_id,
                line.kind,
                line.effect,
                line.description,
                line.quantity,
                line.amount,
                line.tax_rate,
                line.tax_amount,
                line.period_start,
                line.period_end,
                line.first_purchase,
            )
            for line in lines
        ],
        "payments": [
            (
                p.gateway,
                p.amount,
                p.currency,
                p.status,
                p.idempotency_key == idempotency_key(p.order, 1),
                (p.pk,) in jobs,
            )
            for p in payments
        ],
        "subscriptions": [
            (s.status, s.current_period_start, s.current_period_end, s.pending_price_id)
            for s in subscriptions
        ],
        "account": account.status,
        "credit": selectors.ledger_balance(account=account, currency="USD"),
        "audit": audit,
    }


def test_a_chunk_writes_what_renewing_each_subscription_alone_writes(prices, monkeypatch):
    alone = {variant: make(variant, prices) for variant in VARIANTS}
    together = {variant: make(variant, prices) for variant in VARIANTS}
    for subscriptions in alone.values():
        for subscription in subscriptions:
            services.subscription_renew(subscription=subscription, now=AFTER_END)
    single = []
    real = services.subscription_renew

    def one_by_one(*, subscription, now=None):
        single.append(subscription.pk)
        return real(subscription=subscription, now=now)

    monkeypatch.setattr("billing.services.subscriptions.subscription_renew", one_by_one)
    ids = [s.pk for subscriptions in together.values() for s in subscriptions]
    renewed = services.subscriptions_renew_chunk(ids=ids, now=AFTER_END)

    for variant in VARIANTS:
        expected = written(alone[variant][0].account_id)
        assert written(together[variant][0].account_id) == expected, variant
    # All but the plan not yet due changed: lapsed awaiting payment, or ended.
    assert renewed == len(ids) - 1
    # Only the plan with credit to apply and the one cancelled at its period's end were
    # left to the single path; the rest went through the chunk's own.
    assert sorted(single) == sorted([together["credit"][0].pk, together["cancelling"][0].pk])
    lapsed = Subscription.objects.filter(pk__in=ids, status="lapsed").count()
    assert lapsed == 9  # the credit covered only part of its renewal


def test_the_common_path_puts_an_account_on_the_licence_screen_once(prices):
    plan, feature = make("plan_and_feature", prices)
    services.subscriptions_renew_chunk(ids=[plan.pk, feature.pk], now=AFTER_END)
    account = plan.account
    account.refresh_from_db()
    assert account.status == "license_screen"
    moves = AuditEvent.objects.filter(account=account, action="account.status_changed")
    first = Order.objects.filter(account=account).order_by("pk").first()
    assert [event.changes for event in moves] == [
        {
            "status": ["active", "license_screen"],
            "reason": f"renewal {first.number} awaits payment",
        }
    ]
    # The premium feature is not the plan: it lapses, but does not move the account.
    assert set(Subscription.objects.filter(account=account).values_list("status", flat=True)) == {
        "lapsed"
    }
    assert Order.objects.filter(account=account).count() == 2
