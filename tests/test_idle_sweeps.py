"""Usage billing and every beat sweep cost what is due and new (issue 16): a run with
nothing to do makes the same number of queries at 3 and at 30 accounts or rows that are
not due, and a rerun after a run that did the work locks none of the rows it finished."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Account, AuditEvent, Invitation
from billing import services as billing_services
from billing.models import (
    MailReminder,
    Order,
    OrderLine,
    Payment,
    Price,
    Product,
    Subscription,
    UsageRecord,
)
from core import outbox
from core.models import OutboxMessage
from inbox import services as inbox_services
from inbox.models import InboundMail
from marketplace import services as marketplace_services
from marketplace.models import App, Developer, Earning, Installation, Plan
from refunds import services as refund_services
from refunds.models import RefundRequest
from support import services as support_services
from support.models import Incident

pytestmark = pytest.mark.django_db

# Wednesday 18 March 2026, 15:00 UTC (11:00 in New York, the vendor's zone).
NOW = datetime(2026, 3, 18, 15, tzinfo=UTC)
SIZES = (3, 30)


def _accounts(n: int, zone: str = "UTC") -> list[Account]:
    return Account.objects.bulk_create(
        [Account(name=f"Idle {zone} {i}", timezone=zone, currency="USD") for i in range(n)]
    )


def _order(account: Account, number: str) -> Order:
    return Order.objects.create(
        account=account,
        number=number,
        currency="USD",
        status=Order.Status.PAID,
        total=Decimal("100.00"),
        paid_at=NOW - timedelta(days=10),
    )


def _queries(run) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        result = run()
    return len(queries), result


def _locks(queries) -> list[str]:
    return [q["sql"] for q in queries if "FOR " in q["sql"] and "UPDATE" in q["sql"]]


def _usage_price(code="sms") -> Price:
    product = Product.objects.create(code=code, name="SMS", kind="usage")
    return Price.objects.create(
        product=product, currency="USD", amount=Decimal("0.04"), interval="month"
    )


# --- usage billing -------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_an_idle_usage_run_makes_one_query_whatever_the_accounts(size, django_assert_num_queries):
    price = _usage_price()
    # 1 April 02:00 UTC: April in UTC, still 31 March in New York.
    now = datetime(2026, 4, 1, 2, tzinfo=UTC)
    this_month = _accounts(size, "UTC")
    not_ended = _accounts(size, "America/New_York")
    UsageRecord.objects.bulk_create(
        [
            UsageRecord(
                account=account,
                product=price.product,
                price=price,
                quantity=5,
                used_on=date(2026, 4, 1),
                reference=f"april-{account.pk}",
            )
            for account in this_month
        ]
        + [
            UsageRecord(
                account=account,
                product=price.product,
                price=price,
                quantity=5,
                used_on=date(2026, 3, 30),
                reference=f"march-{account.pk}",
            )
            for account in not_ended
        ]
    )
    with django_assert_num_queries(1):
        assert billing_services.usage_bill_due(now=now) == 0
    assert not Order.objects.exists()


def test_usage_is_billed_once_the_month_ended_in_the_accounts_zone():
    price = _usage_price()
    kiritimati = _accounts(1, "Pacific/Kiritimati")[0]  # UTC+14
    new_york = _accounts(1, "America/New_York")[0]
    march = datetime(2026, 3, 20, 15, tzinfo=UTC)
    for account in (kiritimati, new_york):
        billing_services.usage_record(
            actor=None,
            account=account,
            product=price.product,
            quantity=100,
            reference="march",
            now=march,
        )
    # 31 March 12:00 UTC is already 1 April 02:00 in Kiritimati, still March in New York.
    assert billing_services.usage_bill_due(now=datetime(2026, 3, 31, 12, tzinfo=UTC)) == 1
    billed = Order.objects.get(lines__kind="usage")
    assert billed.account_id == kiritimati.pk and billed.total > 0
    assert UsageRecord.objects.get(account=new_york).line_id is None
    # April's usage in Kiritimati is this month's there: not billed with March.
    billing_services.usage_record(
        actor=None,
        account=kiritimati,
        product=price.product,
        quantity=7,
        reference="april",
        now=datetime(2026, 3, 31, 12, tzinfo=UTC),
    )
    assert billing_services.usage_bill_due(now=datetime(2026, 4, 1, 12, tzinfo=UTC)) == 1
    assert Order.objects.filter(lines__kind="usage", account=new_york).count() == 1
    assert UsageRecord.objects.get(account=kiritimati, reference="april").line_id is None
    assert Order.objects.filter(account=kiritimati).count() == 1


# --- the refund deadline sweep ------------------------------------------------------------


def _refund_rows(account, order, rows: list[dict]) -> None:
    RefundRequest.objects.bulk_create(
        [
            RefundRequest(
                number=f"RR-IDLE-{order.pk}-{i}",
                account=account,
                order=order,
                channel="web",
                preset="acelle",
                reason="no_longer_needed",
                payout_method="original",
                currency="USD",
                received_at=NOW - timedelta(days=8),
                created_at=NOW - timedelta(days=8),
                **row,
            )
            for i, row in enumerate(rows)
        ]
    )


@pytest.mark.parametrize("size", SIZES)
def test_the_refund_sweep_does_not_read_finished_or_far_requests_again(size):
    account = _accounts(1)[0]
    order = _order(account, f"ORD-IDLE-{size}")
    overdue = {
        "state": "received",
        "ack_due_at": NOW - timedelta(days=3),
        "decide_due_at": NOW - timedelta(days=1),
        "next_deadline": NOW - timedelta(days=3),
        # As the migration leaves a request the old sweep would have read.
        "sweep_at": NOW - timedelta(days=8),
    }
    far = {
        "state": "acknowledged",
        "ack_due_at": NOW - timedelta(days=5),
        "decide_due_at": NOW + timedelta(days=30),
        "next_deadline": NOW + timedelta(days=30),
        "sweep_at": NOW + timedelta(days=29),
    }
    _refund_rows(account, order, [overdue] * size + [far] * size)
    assert refund_services.refund_deadlines_sweep(now=NOW) == {
        "reminded": 0,
        "breached": 2 * size,
    }
    assert set(
        RefundRequest.objects.filter(state="received").values_list("sweep_at", flat=True)
    ) == {None}
    with CaptureQueriesContext(connection) as queries:
        assert refund_services.refund_deadlines_sweep(now=NOW + timedelta(hours=1)) == {
            "reminded": 0,
            "breached": 0,
        }
    assert len(queries) == 1 and not _locks(queries)
    assert AuditEvent.objects.filter(action="refund.deadline_breached").count() == 2 * size


def test_a_refund_reminder_is_sent_once_then_its_breach_once(django_capture_on_commit_callbacks):
    account = _accounts(1)[0]
    order = _order(account, "ORD-REMIND")
    decide = datetime(2026, 3, 20, 3, 59, tzinfo=UTC)  # Thursday 19 March, end of day in NY
    _refund_rows(
        account,
        order,
        [
            {
                "state": "in_review",
                "ack_due_at": NOW - timedelta(days=1),
                "decide_due_at": decide,
                "next_deadline": decide,
                "sweep_at": decide - timedelta(days=5),
            }
        ],
    )
    request = RefundRequest.objects.get()
    with django_capture_on_commit_callbacks():
        assert refund_services.refund_deadlines_sweep(now=NOW) == {"reminded": 1, "breached": 0}
    request.refresh_from_db()
    assert (request.reminded, request.sweep_at) == (["decide"], decide + timedelta(microseconds=1))
    assert refund_services.refund_deadlines_sweep(now=NOW + timedelta(hours=6)) == {
        "reminded": 0,
        "breached": 0,
    }
    late = decide + timedelta(minutes=1)
    with django_capture_on_commit_callbacks():
        assert refund_services.refund_deadlines_sweep(now=late) == {"reminded": 0, "breached": 1}
    request.refresh_from_db()
    assert (request.breached, request.sweep_at) == (["decide"], None)
    assert refund_services.refund_deadlines_sweep(now=late + timedelta(days=1)) == {
        "reminded": 0,
        "breached": 0,
    }


# --- the incident deadline sweep ----------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_the_incident_sweep_escalates_once_and_does_not_read_it_again(size):
    account = _accounts(1)[0]
    rows = [
        {
            "first_response_due_at": NOW - timedelta(hours=2),
            "next_deadline": NOW - timedelta(hours=2),
        },
        {
            "first_response_due_at": NOW + timedelta(days=2),
            "next_deadline": NOW + timedelta(days=2),
        },
    ]
    Incident.objects.bulk_create(
        [
            Incident(
                number=f"INC-IDLE-{i}-{j}",
                account=account,
                channel="web",
                subject="Help",
                description="Please",
                severity="P3",
                support_year_start=date(2026, 1, 1),
                seats_at_open=2,
                state="open",
                opened_at=NOW - timedelta(days=1),
                sweep_at=row["next_deadline"],  # as the migration leaves it
                **row,
            )
            for i in range(size)
            for j, row in enumerate(rows)
        ]
    )
    assert support_services.incident_deadlines_sweep(now=NOW) == size
    with CaptureQueriesContext(connection) as queries:
        assert support_services.incident_deadlines_sweep(now=NOW + timedelta(minutes=5)) == 0
    assert len(queries) == 1 and not _locks(queries)
    assert AuditEvent.objects.filter(action="incident.deadline_breached").count() == size


# --- trial mails --------------------------------------------------------------------------


def _marketplace_plan() -> Plan:
    developer = Developer.objects.create(name="Idle Labs", slug="idle-labs")
    app = App.objects.create(
        developer=developer, slug="idle-app", name="Idle App", summary="Idle", category="other"
    )
    return Plan.objects.create(
        app=app,
        code="main",
        name="Main",
        pricing_model="subscription",
        interval="month",
        amount=Decimal("9.00"),
    )


@pytest.mark.parametrize("size", SIZES)
def test_idle_trial_mails_lock_nothing(size, django_assert_num_queries):
    plan = _marketplace_plan()
    today = NOW.date()
    trials = [
        (1, today + timedelta(days=3)),  # the 3-day mail sent, the last day to come
        (0, today + timedelta(days=30)),  # far from its end
        (2, today + timedelta(days=1)),  # both mails sent
    ]
    Installation.objects.bulk_create(
        [
            Installation(
                account=account,
                app=plan.app,
                plan=plan,
                state="trialing",
                trial_mails=mails,
                trial_end=end,
            )
            for account, (mails, end) in zip(
                _accounts(3 * size, "America/New_York"), trials * size, strict=True
            )
        ]
    )
    with django_assert_num_queries(1):
        assert marketplace_services.trials_remind(now=NOW) == 0


# --- billing reminders --------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_reminders_already_sent_are_not_claimed_again(size, django_capture_on_commit_callbacks):
    monthly = Price.objects.create(
        product=Product.objects.create(code="pro", name="Pro", kind="subscription"),
        currency="USD",
        amount=Decimal("31.00"),
        interval="month",
    )
    yearly = Price.objects.create(
        product=monthly.product, currency="USD", amount=Decimal("310.00"), interval="year"
    )
    subs = [
        Subscription(
            account=account,
            price=price,
            status="active",
            current_period_start=end - timedelta(days=30),
            current_period_end=end,
        )
        for account in _accounts(size)
        for price, end in (
            (monthly, NOW.date() + timedelta(days=20)),
            (yearly, NOW.date() + timedelta(days=25)),
        )
    ]
    Subscription.objects.bulk_create(subs)
    with django_capture_on_commit_callbacks():
        assert billing_services.reminders_send_due(now=NOW) == size  # the yearly renewals
    assert MailReminder.objects.filter(kind="renewal_coming").count() == size
    count, sent = _queries(lambda: billing_services.reminders_send_due(now=NOW + timedelta(days=1)))
    # the subscriptions in a window, the reminders sent, the cards expiring
    assert (count, sent) == (3, 0)
    assert MailReminder.objects.count() == size


# --- payment retries, earnings, invitations, mail, outbox ---------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_an_idle_payment_retry_run_is_one_query(size, django_assert_num_queries):
    account = _accounts(1)[0]
    order = _order(account, "ORD-RETRY")
    Payment.objects.bulk_create(
        [
            Payment(
                account=account,
                order=order,
                gateway="stripe",
                amount=Decimal("10.00"),
                currency="USD",
                status="failed",
                idempotency_key=f"idle-{i}",
                next_attempt_at=None if i % 2 else NOW + timedelta(days=2),
            )
            for i in range(2 * size)
        ]
    )
    with django_assert_num_queries(1):
        assert billing_services.payments_retry_due(now=NOW) == 0


@pytest.mark.parametrize("size", SIZES)
def test_an_idle_earnings_release_is_one_query(size, django_assert_num_queries):
    plan = _marketplace_plan()
    account = _accounts(1)[0]
    order = _order(account, "ORD-EARN")
    product = Product.objects.create(code="app-idle", name="Idle App", kind="app_subscription")
    lines = OrderLine.objects.bulk_create(
        [
            OrderLine(order=order, product=product, kind=product.kind, amount=Decimal("10.00"))
            for _ in range(2 * size)
        ]
    )
    Earning.objects.bulk_create(
        [
            Earning(
                developer=plan.app.developer,
                app=plan.app,
                line=line,
                currency="USD",
                gross=Decimal("10.00"),
                fee=Decimal("2.00"),
                net=Decimal("8.00"),
                earned_on=NOW.date() - timedelta(days=20),
                **(
                    {"status": "available", "available_on": NOW.date() - timedelta(days=5)}
                    if i % 2
                    else {"status": "held", "available_on": NOW.date() + timedelta(days=3)}
                ),
            )
            for i, line in enumerate(lines)
        ]
    )
    with django_assert_num_queries(1):
        assert marketplace_services.earnings_release(now=NOW) == 0


@pytest.mark.parametrize("size", SIZES)
def test_an_idle_invitation_expiry_is_one_query(size, django_assert_num_queries):
    account = _accounts(1)[0]
    Invitation.objects.bulk_create(
        [
            Invitation(
                account=account,
                email=f"person{i}@example.com",
                nonce=f"nonce-{i}",
                status="expired" if i % 2 else "pending",
                expires_at=NOW + timedelta(days=-1 if i % 2 else 3),
            )
            for i in range(2 * size)
        ]
    )
    with django_assert_num_queries(1):
        assert account_services.invitations_expire(now=NOW) == 0


@pytest.mark.parametrize("size", SIZES)
def test_an_idle_stale_mail_run_is_two_queries(size, django_assert_num_queries):
    InboundMail.objects.bulk_create(
        [
            InboundMail(
                message_id=f"<idle-{i}-{status}@example.com>",
                raw=f"inbox/idle-{i}-{status}.eml",
                size=10,
                status=status,
                received_at=when,
            )
            for i in range(size)
            for status, when in (
                ("triage", NOW - timedelta(days=3)),  # processed long ago
                ("received", NOW - timedelta(seconds=30)),  # being processed now
                ("confirm", NOW - timedelta(hours=1)),  # its link still good
            )
        ]
    )
    with django_assert_num_queries(2):  # the stale mails, the expired confirmations
        assert inbox_services.mail_process_stale(now=NOW) == 0


@pytest.mark.parametrize("size", SIZES)
def test_an_idle_outbox_relay_makes_the_same_queries(size):
    now = timezone.now()  # the relay reads the clock itself
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                task="billing.tasks.send_receipt_email",
                created_at=now,
                next_try_at=now + timedelta(days=1) if i % 2 else now,
                sent_at=None if i % 2 else now,
            )
            for i in range(2 * size)
        ]
    )
    count, published = _queries(lambda: outbox.relay())
    assert (count, published) == (4, 0)


def test_the_held_file_purge_reads_no_rows(tmp_path, settings, django_assert_num_queries):
    from refunds import holding

    settings.MEDIA_ROOT = str(tmp_path)
    (tmp_path / "refund-held").mkdir()
    (tmp_path / "refund-held" / "fresh.pdf").write_bytes(b"%PDF")
    with django_assert_num_queries(0):
        assert holding.purge() == 0
