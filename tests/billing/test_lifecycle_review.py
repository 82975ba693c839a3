"""Regression tests for the review of start, renewal, plan changes and the licence screen."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts import services as account_services
from accounts.errors import PortalError
from accounts.models import AuditEvent
from billing import selectors, services
from billing.models import Order, Price, Product, Subscription
from tests.billing.helpers import AFTER_END, NOW, usd
from tests.factories import UserFactory, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Administrator"))
    return user


def test_unpaid_upgrade_is_voided_at_renewal_and_cannot_be_paid_after(
    account, subscription, enterprise, staff
):
    services.ledger_credit(
        actor=None, account=account, amount=usd("20"), kind="seat_credit", description="x"
    )
    _, _, upgrade = services.subscription_change_plan(
        actor=owner_of(account), subscription=subscription, price=enterprise, now=NOW
    )
    assert upgrade.credit_applied == Decimal("20")
    services.subscriptions_renew_due(now=AFTER_END)
    upgrade.refresh_from_db()
    assert upgrade.status == "cancelled"
    with pytest.raises(PortalError):
        services.payment_record_manual(actor=staff, order=upgrade, reference="late")
    # Its credit came back and paid towards the renewal instead.
    renewal = Order.objects.exclude(pk=upgrade.pk).get()
    assert renewal.credit_applied == Decimal("20")
    subscription.refresh_from_db()
    assert subscription.price != enterprise


def test_cancelling_an_unpaid_renewal_ends_the_plan_so_a_new_one_can_start(account, subscription):
    services.subscriptions_renew_due(now=AFTER_END)
    renewal = Order.objects.get()
    services.order_cancel(actor=owner_of(account), order=renewal)
    subscription.refresh_from_db()
    account.refresh_from_db()
    assert subscription.status == "cancelled" and account.status == "license_screen"
    assert AuditEvent.objects.filter(action="subscription.ended").exists()
    new, order = services.subscription_start(
        actor=owner_of(account),
        account=account,
        price=subscription.price,
        quantity=3,
        now=AFTER_END,
    )
    assert new.status == "pending" and order.status == "awaiting_payment"


def test_a_renewal_paid_late_starts_its_period_on_the_payment_day(account, subscription, staff):
    services.subscriptions_renew_due(now=AFTER_END)
    paid_on = datetime(2026, 5, 5, 15, 0, tzinfo=ZoneInfo("UTC"))
    services.payment_record_manual(
        actor=staff, order=Order.objects.get(), reference="R", now=paid_on
    )
    subscription.refresh_from_db()
    assert (subscription.current_period_start, subscription.current_period_end) == (
        date(2026, 5, 5),
        date(2026, 6, 5),
    )
    assert services.subscriptions_renew_due(now=paid_on) == 0
    subscription.refresh_from_db()
    assert subscription.status == "active"


def test_staff_cannot_make_a_lapsed_account_active(account, subscription, staff):
    services.subscriptions_renew_due(now=AFTER_END)
    with pytest.raises(PortalError, match="stays on the licence screen"):
        account_services.account_set_status(actor=staff, account=account, status="active")
    account.refresh_from_db()
    assert account.status == "license_screen"


def test_cancelling_the_first_order_audits_the_plan(account, subscription):
    Subscription.objects.all().delete()
    sub, order = services.subscription_start(
        actor=owner_of(account), account=account, price=Price.objects.get(), quantity=3, now=NOW
    )
    services.order_cancel(actor=owner_of(account), order=order)
    assert AuditEvent.objects.filter(action="subscription.ended", object_id=str(sub.pk)).exists()


def test_the_page_tells_the_truth_about_a_plan_awaiting_its_first_payment(
    client, account, subscription
):
    Subscription.objects.all().delete()
    services.subscription_start(
        actor=owner_of(account), account=account, price=Price.objects.get(), quantity=5, now=NOW
    )
    client.force_login(owner_of(account))
    body = client.get(reverse("billing_plan")).content.decode()
    assert "Awaiting the first payment" in body
    assert "seats paid" not in body and 'data-testid="cancel-plan"' not in body


def test_ending_a_plan_forgets_its_pending_downgrade(account, subscription):
    product = Product.objects.create(code="lite", name="Lite", kind="subscription")
    lite = Price.objects.create(
        product=product, currency="USD", amount=Decimal("10"), scheme="per_seat", interval="month"
    )
    services.subscription_change_plan(
        actor=owner_of(account), subscription=subscription, price=lite, now=NOW
    )
    services.subscription_set_cancel_at_period_end(
        actor=owner_of(account), subscription=subscription, cancel=True
    )
    services.subscriptions_renew_due(now=AFTER_END)
    subscription.refresh_from_db()
    assert subscription.status == "cancelled" and subscription.pending_price is None


def test_the_renewal_job_survives_one_broken_plan(account, subscription, monkeypatch):
    from billing.services import orders

    calls = []
    real = orders.lines_with_tax

    def flaky(priced, lines, today, **kwargs):
        # Pricing `account`'s renewal fails: in the chunk's common path, then on its own.
        calls.append(priced.pk)
        if priced.pk == account.pk:
            raise RuntimeError("boom")
        return real(priced, lines, today, **kwargs)

    from tests.factories import AccountFactory

    other = AccountFactory(seats_paid=1)
    Subscription.objects.create(
        account=other,
        price=subscription.price,
        quantity=1,
        current_period_start=date(2026, 3, 1),
        current_period_end=date(2026, 4, 1),
    )
    monkeypatch.setattr(orders, "lines_with_tax", flaky)
    services.subscriptions_renew_due(now=AFTER_END)
    assert calls.count(account.pk) == 2  # once in the chunk's transaction, once alone
    assert Order.objects.count() == 1
    assert not Order.objects.filter(account=account).exists()
    assert selectors.ledger_balance(account=account, currency="USD") == usd("0")
