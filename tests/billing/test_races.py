"""Two seat changes at the same moment (PostgreSQL row locks): no lost update, ledger and
seats agree. Skipped without PostgreSQL; CI runs it."""

import os
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing import selectors, services
from billing.models import LedgerEntry, Price, Product, Subscription
from tests.factories import AccountFactory, MembershipFactory, owner_of
from tests.races import assert_only_refusals, run_together

NOW = datetime(2026, 3, 11, 2, 0, tzinfo=ZoneInfo("UTC"))

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def plan_account():
    product = Product.objects.create(code="pro", name="Pro", kind="subscription")
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("31"), scheme="per_seat", interval="month"
    )
    account = AccountFactory(seats_paid=5, timezone="America/New_York")
    Subscription.objects.create(
        account=account,
        price=price,
        quantity=5,
        current_period_start=date(2026, 3, 1),
        current_period_end=date(2026, 4, 1),
    )
    admin = MembershipFactory(account=account, role="billing_admin", has_seat=False)
    return account, [owner_of(account), admin.user]


def test_the_same_decrease_twice_at_once_credits_once(plan_account):
    account, actors = plan_account

    def decrease(actor):
        return lambda: services.subscription_change_seats(
            actor=actor, subscription=Subscription.objects.get(), quantity=4, now=NOW
        )

    assert_only_refusals(run_together(*(decrease(a) for a in actors)))
    account.refresh_from_db()
    assert Subscription.objects.get().quantity == 4 == account.seats_paid
    credits = LedgerEntry.objects.filter(kind="seat_credit")
    assert credits.count() == 1 and credits.get().amount == Decimal("22.00")  # 31 x 22/31


def test_two_different_decreases_at_once_leave_ledger_and_seats_agreeing(plan_account):
    account, actors = plan_account
    targets = [4, 2]
    outcomes = run_together(
        *(
            (
                lambda actor=actor, q=q: services.subscription_change_seats(
                    actor=actor, subscription=Subscription.objects.get(), quantity=q, now=NOW
                )
            )
            for actor, q in zip(actors, targets, strict=True)
        )
    )
    assert_only_refusals(outcomes)
    account.refresh_from_db()
    final = Subscription.objects.get().quantity
    assert final == account.seats_paid and final in targets
    # Whatever the order (4 then 2: two credits; 2 then 4: a credit, then an increase
    # that the credit pays), the balance left is worth exactly the seats removed, 5 -> final.
    balance = selectors.ledger_balance(account=account, currency="USD")
    assert balance.amount == Decimal("22.00") * (5 - final)
