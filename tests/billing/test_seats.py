"""Seat changes on a per-seat plan (1CRM terms: increases charged pro rata at once,
decreases an immediate non-refundable credit) and their payment."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.errors import NotAllowed, PortalError
from accounts.models import Account, AuditEvent
from billing import selectors, services
from billing import selectors as billing_selectors
from billing.models import LedgerEntry, Order, Payment
from billing.quotes import seat_change_quote
from tests.billing.helpers import NOW, usd
from tests.billing.test_query_counts import MAX_QUERIES
from tests.factories import (
    InvitationFactory,
    MembershipFactory,
    UserFactory,
    owner_of,
)

# Proration to the cent: amount = unit price x |delta| x days left / period length,
# rounded half up once. Monthly and yearly periods, several days, both directions.
QUOTES = [
    # unit, current, new, start, end, today, kind, amount
    ("29.00", 5, 7, date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 1), "charge", "58.00"),
    ("29.00", 5, 7, date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 11), "charge", "39.29"),
    ("29.00", 5, 6, date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 31), "charge", "0.94"),
    ("29.00", 5, 3, date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 16), "credit", "29.94"),
    ("29.00", 5, 5, date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 16), "none", "0.00"),
    ("290.00", 2, 3, date(2026, 1, 1), date(2027, 1, 1), date(2026, 7, 1), "charge", "146.19"),
    ("290.00", 3, 1, date(2026, 1, 1), date(2027, 1, 1), date(2026, 12, 31), "credit", "1.59"),
    ("49.00", 1, 4, date(2026, 2, 1), date(2026, 3, 1), date(2026, 2, 15), "charge", "73.50"),
    ("10.00", 1, 2, date(2026, 1, 1), date(2026, 1, 4), date(2026, 1, 2), "charge", "6.67"),
    ("10.00", 1, 4, date(2026, 1, 1), date(2026, 1, 4), date(2026, 1, 2), "charge", "20.00"),
]


@pytest.mark.parametrize(
    ("unit", "current", "new", "start", "end", "today", "kind", "amount"), QUOTES
)
def test_seat_change_quote_to_the_cent(unit, current, new, start, end, today, kind, amount):
    quote = seat_change_quote(
        unit_price=usd(unit),
        current=current,
        new=new,
        period_start=start,
        period_end=end,
        today=today,
    )
    assert (quote.kind, quote.amount) == (kind, usd(amount))
    assert f"${Decimal(amount):,}" in quote.explain() or kind == "none"


@pytest.mark.django_db
class TestSeatChanges:
    def test_today_is_the_accounts_local_date(self, account):
        assert billing_selectors.account_today(account, NOW) == date(2026, 3, 10)

    def test_increase_with_the_manual_gateway_waits_for_the_payment(
        self, account, subscription, django_capture_on_commit_callbacks
    ):
        owner = owner_of(account)
        with django_capture_on_commit_callbacks(execute=True):
            sub, quote, order = services.subscription_change_seats(
                actor=owner, subscription=subscription, quantity=5, now=NOW
            )
        assert quote.amount == usd("44.00")  # 31 x 2 x 22/31
        assert order.status == Order.Status.AWAITING_PAYMENT and order.amount_due == Decimal("44")
        assert sub.quantity == 3
        account.refresh_from_db()
        assert account.seats_paid == 3  # access comes with the payment
        payment = Payment.objects.get(order=order)
        assert payment.status == "pending" and payment.idempotency_key.endswith(
            f"-order-{order.pk}-1"
        )
        line = order.lines.get()
        assert (line.period_start, line.period_end, line.quantity) == (
            date(2026, 3, 10),
            date(2026, 4, 1),
            2,
        )

        staff = UserFactory(is_staff=True)
        staff.groups.add(Group.objects.get(name="Billing reviewer"))
        services.payment_record_manual(actor=staff, order=order, reference="BANK-778")
        account.refresh_from_db()
        subscription.refresh_from_db()
        assert subscription.quantity == 5 and account.seats_paid == 5
        payment.refresh_from_db()
        assert payment.status == "succeeded" and payment.reference == "BANK-778"
        with pytest.raises(PortalError, match="is paid"):
            services.payment_record_manual(actor=staff, order=order, reference="again")
        assert Payment.objects.filter(order=order, status="succeeded").count() == 1

    def test_increase_covered_by_credit_is_instant(self, account, subscription):
        services.ledger_credit(
            actor=None, account=account, amount=usd("50"), kind="seat_credit", description="earlier"
        )
        _, _, order = services.subscription_change_seats(
            actor=owner_of(account), subscription=subscription, quantity=5, now=NOW
        )
        assert order.status == Order.Status.PAID and order.credit_applied == Decimal("44")
        assert not Payment.objects.exists()
        account.refresh_from_db()
        assert account.seats_paid == 5
        assert selectors.ledger_balance(account=account, currency="USD") == usd("6.00")

    def test_partial_credit_then_gateway_for_the_rest(self, account, subscription):
        services.ledger_credit(
            actor=None, account=account, amount=usd("10"), kind="seat_credit", description="earlier"
        )
        _, _, order = services.subscription_change_seats(
            actor=owner_of(account), subscription=subscription, quantity=5, now=NOW
        )
        assert order.credit_applied == Decimal("10") and order.amount_due == Decimal("34")
        assert Payment.objects.get(order=order).amount == Decimal("34")

    def test_decrease_is_an_immediate_credit(self, account, subscription):
        sub, quote, order = services.subscription_change_seats(
            actor=owner_of(account), subscription=subscription, quantity=2, now=NOW
        )
        assert order is None and sub.quantity == 2 and quote.amount == usd("22.00")
        account.refresh_from_db()
        assert account.seats_paid == 2
        entry = LedgerEntry.objects.get()
        assert entry.kind == "seat_credit" and entry.amount == Decimal("22.00")
        assert AuditEvent.objects.filter(action="subscription.seats_changed").exists()

    def test_decrease_below_the_seats_in_use_is_refused(self, account, subscription):
        MembershipFactory(account=account, has_seat=True)
        InvitationFactory(account=account, with_seat=True)  # 3 in use
        with pytest.raises(PortalError) as exc:
            services.subscription_change_seats(
                actor=owner_of(account), subscription=subscription, quantity=2, now=NOW
            )
        assert exc.value.field == "quantity" and "3 of 3" in exc.value.message
        assert not LedgerEntry.objects.exists()

    def test_members_cannot_change_seats(self, account, subscription):
        member = MembershipFactory(account=account, role="member")
        with pytest.raises(NotAllowed):
            services.subscription_change_seats(
                actor=member.user, subscription=subscription, quantity=4, now=NOW
            )
        admin = MembershipFactory(account=account, role="billing_admin", has_seat=False)
        services.subscription_change_seats(
            actor=admin.user, subscription=subscription, quantity=2, now=NOW
        )

    @pytest.mark.parametrize("quantity", [0, -1, "3", 2.5, True])
    def test_bad_quantities_name_the_field(self, account, subscription, quantity):
        with pytest.raises(PortalError) as exc:
            services.subscription_change_seats(
                actor=owner_of(account), subscription=subscription, quantity=quantity, now=NOW
            )
        assert exc.value.field == "quantity"

    def test_seat_limit_now_reads_the_plan(self, account, subscription):
        services.subscription_change_seats(
            actor=owner_of(account), subscription=subscription, quantity=1, now=NOW
        )
        from accounts.errors import SeatLimitError

        with pytest.raises(SeatLimitError):
            services_accounts().invitation_create(
                actor=owner_of(account),
                account=Account.objects.get(pk=account.pk),
                email="one.more@example.com",
            )


def services_accounts():
    from accounts import services as account_services

    return account_services


@pytest.fixture
def mid_period():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.mark.django_db
@pytest.mark.usefixtures("mid_period")
class TestBillingPage:
    def test_preview_then_confirm(self, client, account, subscription):
        client.force_login(owner_of(account))
        url = reverse("billing_seat_change")
        page = client.post(url, {"account_id": account.pk, "quantity": 2, "action": "preview"})
        body = page.content.decode()
        assert page.status_code == 200 and 'data-testid="seat-quote"' in body
        assert "Removing 1 seat" in body and "not refundable" in body
        subscription.refresh_from_db()
        assert subscription.quantity == 3  # a preview changes nothing
        response = client.post(
            url, {"account_id": account.pk, "quantity": 2, "action": "confirm"}, follow=True
        )
        assert "You now have 2 seats" in response.content.decode()
        subscription.refresh_from_db()
        assert subscription.quantity == 2

    def test_bad_quantity_is_a_400_naming_it(self, client, account, subscription):
        client.force_login(owner_of(account))
        response = client.post(reverse("billing_seat_change"), {"quantity": "lots"})
        assert response.status_code == 400 and "Enter a whole number" in response.content.decode()

    def test_members_cannot_use_it(self, client, account, subscription):
        member = MembershipFactory(account=account, role="member")
        client.force_login(member.user)
        response = client.post(reverse("billing_seat_change"), {"quantity": 9, "action": "confirm"})
        assert response.status_code == 403
        subscription.refresh_from_db()
        assert subscription.quantity == 3

    def test_page_queries_stay_constant_as_orders_grow(self, client, account, subscription):
        client.force_login(owner_of(account))
        url = reverse("settings_billing")

        def count():
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(url).status_code == 200
            return len(ctx.captured_queries)

        staff = UserFactory(is_staff=True)
        staff.groups.add(Group.objects.get(name="Billing reviewer"))

        def add_a_paid_seat():
            subscription.refresh_from_db()
            _, _, order = services.subscription_change_seats(
                actor=owner_of(account),
                subscription=subscription,
                quantity=subscription.quantity + 1,
                now=NOW,
            )
            services.payment_record_manual(actor=staff, order=order, reference="R")

        add_a_paid_seat()
        few = count()
        for _ in range(20):
            add_a_paid_seat()
        assert count() == few <= MAX_QUERIES["page"]

    def test_staff_record_a_payment_in_the_console(self, client, account, subscription):
        _, _, order = services.subscription_change_seats(
            actor=owner_of(account), subscription=subscription, quantity=4, now=NOW
        )
        staff = UserFactory(is_staff=True)
        staff.groups.add(Group.objects.get(name="Billing reviewer"))
        Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"s": 1})
        client.force_login(staff)
        url = reverse("admin:billing_order_change", args=[order.pk])
        page = client.get(url)
        assert page.status_code == 200 and "payment_reference" in page.content.decode()
        form = {"payment_reference": "WIRE-42"}
        for prefix, rows in (("lines", order.lines.all()), ("payments", order.payments.all())):
            form.update(
                {
                    f"{prefix}-TOTAL_FORMS": len(rows),
                    f"{prefix}-INITIAL_FORMS": len(rows),
                    f"{prefix}-MIN_NUM_FORMS": 0,
                    f"{prefix}-MAX_NUM_FORMS": 1000,
                }
            )
            for i, row in enumerate(rows):
                form.update({f"{prefix}-{i}-id": row.pk, f"{prefix}-{i}-order": order.pk})
        response = client.post(url, form)
        assert response.status_code == 302
        order.refresh_from_db()
        account.refresh_from_db()
        assert order.status == "paid" and account.seats_paid == 4
