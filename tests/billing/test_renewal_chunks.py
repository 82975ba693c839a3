"""Renewals fanned out in chunks (issue 16): the hourly run only queues the due ids, each
chunk renews its own, safe to run twice and beside another, at a fixed number of queries
per renewal whatever the size of the customer base."""

import os
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import services, tasks
from billing.models import (
    BillingDetails,
    LedgerEntry,
    Order,
    OrderLine,
    Payment,
    Subscription,
    TaxRate,
)
from tests.billing.helpers import AFTER_END, usd
from tests.factories import AccountFactory
from tests.races import run_together

pytestmark = pytest.mark.django_db

# A chunk of the common case (active per-seat plans, no credit, each left awaiting its
# payment) is renewed in one transaction of fixed statements, whatever its size: its
# savepoint in a test (a real one is BEGIN/COMMIT); the accounts locked, then the
# subscriptions; the orders with their numbers (PostgreSQL takes their ids from the
# sequence first, SQLite writes the numbers after); their lines; the payments; their
# jobs; the plans lapsed; the accounts put on the licence screen; the audit rows; and the
# release. Before it, the chunk's own reads: its subscriptions and the accounts' billing
# details (and the tax rates, when one of them has a country). No marketplace look-up:
# the plans are not an app's. (After the commit, one "sent" mark for the chunk's jobs.)
PER_RENEWAL = 0
PER_CHUNK = 2 + 12


def plan_subscription(plan, *, end=date(2026, 4, 1), status="active", **account):
    account = AccountFactory(seats_paid=3, timezone="America/New_York", **account)
    return Subscription.objects.create(
        account=account,
        price=plan,
        quantity=3,
        status=status,
        current_period_start=date(2026, 3, 1),
        current_period_end=end,
    )


def test_the_dispatch_queues_exactly_the_due_subscriptions_and_renews_none(plan, monkeypatch):
    chunks = []
    monkeypatch.setattr(
        tasks.subscriptions_renew_chunk, "apply_async", lambda args: chunks.append(args[0])
    )
    due = [plan_subscription(plan) for _ in range(5)]
    due.append(plan_subscription(plan, status="trialing"))
    plan_subscription(plan, end=date(2026, 5, 1))  # not due
    plan_subscription(plan, status="lapsed")  # awaits its renewal's payment
    plan_subscription(plan, status="cancelled")

    queued = services.subscriptions_renew_dispatch(now=AFTER_END, chunk_size=4)

    assert queued == 6 and [len(chunk) for chunk in chunks] == [4, 2]
    assert sorted(pk for chunk in chunks for pk in chunk) == sorted(s.pk for s in due)
    assert not Order.objects.exists()  # the dispatcher only reads and queues


def test_the_beat_job_dispatches_and_the_chunk_job_renews(plan):
    subscription = plan_subscription(plan)
    with time_machine.travel(AFTER_END, tick=False):
        assert tasks.subscriptions_renew_due.delay().get() == 1  # the chunk runs eagerly
    subscription.refresh_from_db()
    assert subscription.status == "lapsed" and Order.objects.count() == 1


def test_a_chunk_run_twice_renews_once(plan):
    paid = plan_subscription(plan)
    services.ledger_credit(
        actor=None, account=paid.account, amount=usd("500"), kind="seat_credit", description="x"
    )
    unpaid = plan_subscription(plan)
    ids = [paid.pk, unpaid.pk]

    assert services.subscriptions_renew_chunk(ids=ids, now=AFTER_END) == 2
    assert services.subscriptions_renew_chunk(ids=ids, now=AFTER_END) == 0

    paid.refresh_from_db()
    unpaid.refresh_from_db()
    assert (paid.status, paid.current_period_start, paid.current_period_end) == (
        "active",
        date(2026, 4, 1),
        date(2026, 5, 1),
    )
    assert (unpaid.status, unpaid.current_period_end) == ("lapsed", date(2026, 4, 1))
    assert Order.objects.filter(account=paid.account).count() == 1
    assert Order.objects.filter(account=unpaid.account).count() == 1
    assert Payment.objects.filter(account=unpaid.account).count() == 1
    assert not Payment.objects.filter(account=paid.account).exists()  # credit paid it
    assert LedgerEntry.objects.filter(account=paid.account, kind="applied").count() == 1


def test_a_chunk_skips_a_subscription_renewed_since_it_was_queued(plan):
    renewed = plan_subscription(plan)
    services.ledger_credit(
        actor=None, account=renewed.account, amount=usd("500"), kind="seat_credit", description="x"
    )
    other = plan_subscription(plan)
    services.subscription_renew(subscription=renewed, now=AFTER_END)
    renewed.refresh_from_db()
    assert renewed.current_period_end == date(2026, 5, 1)

    assert services.subscriptions_renew_chunk(ids=[renewed.pk, other.pk], now=AFTER_END) == 1
    renewed.refresh_from_db()
    assert renewed.current_period_end == date(2026, 5, 1)
    assert Order.objects.filter(account=renewed.account).count() == 1
    assert Order.objects.filter(account=other.account).count() == 1


def _grow_customer_base(plan, count):
    """Accounts that are not due, with credit and billing details: none may cost a query."""
    TaxRate.objects.get_or_create(
        country="DE", region="", valid_from=date(2020, 1, 1), defaults={"name": "VAT", "rate": 19}
    )
    for _ in range(count):
        subscription = plan_subscription(plan, end=date(2026, 5, 1))
        BillingDetails.objects.create(account=subscription.account, country="DE")
        services.ledger_credit(
            actor=None,
            account=subscription.account,
            amount=usd("5"),
            kind="seat_credit",
            description="x",
        )


@pytest.mark.parametrize("taxed", [False, True])
def test_queries_per_renewal_stay_fixed_as_chunks_and_the_customer_base_grow(plan, taxed):
    def due_chunk(size):
        subscriptions = [plan_subscription(plan) for _ in range(size)]
        if taxed:
            for subscription in subscriptions:
                BillingDetails.objects.create(account=subscription.account, country="DE")
        return [subscription.pk for subscription in subscriptions]

    _grow_customer_base(plan, 3)
    small = due_chunk(5)
    with CaptureQueriesContext(connection) as five:
        assert services.subscriptions_renew_chunk(ids=small, now=AFTER_END) == 5
    _grow_customer_base(plan, 30)
    large = due_chunk(20)
    with CaptureQueriesContext(connection) as twenty:
        assert services.subscriptions_renew_chunk(ids=large, now=AFTER_END) == 20

    per_renewal = (len(twenty) - len(five)) / 15
    assert per_renewal == PER_RENEWAL, [q["sql"][:90] for q in five.captured_queries]
    assert len(five) == PER_CHUNK + taxed + 5 * PER_RENEWAL
    assert len(twenty) == PER_CHUNK + taxed + 20 * PER_RENEWAL
    amounts = OrderLine.objects.filter(subscription_id__in=large).values_list("amount", flat=True)
    # 3 seats x 31, and 19% of it when the tax the chunk read once applies.
    assert set(amounts) == {Decimal("110.67") if taxed else Decimal("93.00")}


def _priced_with(monkeypatch, fail):
    """Every renewal's order priced as usual, except that `fail(account)` may raise: the
    chunk's common path and a single renewal both price their lines through it."""
    from billing.services import orders

    real = orders.lines_with_tax

    def pricing(account, lines, today, **kwargs):
        fail(account)
        return real(account, lines, today, **kwargs)

    monkeypatch.setattr(orders, "lines_with_tax", pricing)


def test_a_soft_time_limit_inside_a_renewal_is_not_swallowed(plan, monkeypatch):
    subscriptions = [plan_subscription(plan) for _ in range(3)]
    calls = []

    def slow(account):
        calls.append(account.pk)
        raise SoftTimeLimitExceeded()

    _priced_with(monkeypatch, slow)
    with pytest.raises(SoftTimeLimitExceeded):
        services.subscriptions_renew_chunk(
            ids=[subscription.pk for subscription in subscriptions], now=AFTER_END
        )
    assert len(calls) == 1  # the chunk stops; the next dispatch queues what is left
    assert not Order.objects.exists()
    with time_machine.travel(AFTER_END, tick=False), pytest.raises(SoftTimeLimitExceeded):
        tasks.subscriptions_renew_chunk.delay([subscriptions[0].pk])


def test_one_failing_renewal_does_not_hold_back_the_rest_of_its_chunk(plan, monkeypatch, caplog):
    subscriptions = [plan_subscription(plan) for _ in range(3)]
    broken = subscriptions[1]

    def flaky(account):
        if account.pk == broken.account_id:
            raise RuntimeError("boom")

    _priced_with(monkeypatch, flaky)
    ids = [subscription.pk for subscription in subscriptions]
    assert services.subscriptions_renew_chunk(ids=ids, now=AFTER_END) == 2
    # The chunk's one transaction failed with it and was rolled back; one by one, the
    # other two renewed and it was logged.
    assert Order.objects.count() == 2 and Payment.objects.count() == 2
    assert not Order.objects.filter(account=broken.account).exists()
    assert f"Renewal of subscription {broken.pk} failed" in caplog.text
    broken.refresh_from_db()
    assert broken.status == "active"
    assert set(Subscription.objects.exclude(pk=broken.pk).values_list("status", flat=True)) == {
        "lapsed"
    }


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_two_workers_running_overlapping_chunks_at_once_renew_each_once(plan):
    subscriptions = [plan_subscription(plan) for _ in range(12)]
    ids = [subscription.pk for subscription in subscriptions]
    outcomes = run_together(
        lambda: services.subscriptions_renew_chunk(ids=ids, now=AFTER_END),
        lambda: services.subscriptions_renew_chunk(ids=ids[::-1], now=AFTER_END),
    )
    # (Each chunk counts what changed since it read its subscriptions: both may count one
    # the other renewed while it waited for the lock.)
    assert all(isinstance(outcome, int) for outcome in outcomes), outcomes
    assert Order.objects.count() == 12 and Payment.objects.count() == 12
    assert set(Subscription.objects.values_list("status", flat=True)) == {"lapsed"}


def test_an_order_is_numbered_from_its_id_in_its_insert(plan):
    from billing.services.orders import order_create

    account = plan_subscription(plan).account
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # past six digits, as a long-lived portal is
            cursor.execute("SELECT setval(pg_get_serial_sequence('billing_order', 'id'), 999998)")
    first, second = (
        order_create(account=account, currency="USD", lines=[], actor=None, now=AFTER_END)
        for _ in range(2)
    )
    for order in (first, second):
        stored = Order.objects.get(pk=order.pk)
        assert order.number == stored.number == f"ORD-2026-{order.pk:06d}"
        assert (stored.account_id, stored.status, stored.created_at) == (
            account.pk,
            "awaiting_payment",
            AFTER_END,
        )
    if connection.vendor == "postgresql":
        assert [first.number, second.number] == ["ORD-2026-999999", "ORD-2026-1000000"]
