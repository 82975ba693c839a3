"""Upgrades now with the difference pro rata; downgrades at the next cycle (acelle §6)."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from accounts.errors import PortalError
from billing import services
from billing.models import Order, Price, Product, Subscription
from tests.billing.helpers import AFTER_END, NOW, usd
from tests.factories import MembershipFactory, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def starter():
    product = Product.objects.create(code="start", name="Starter", kind="subscription")
    return Price.objects.create(
        product=product,
        currency="USD",
        amount=Decimal("15.50"),
        scheme="per_seat",
        interval="month",
    )


def test_upgrade_charges_the_difference_pro_rata_and_applies_when_paid(
    account, subscription, enterprise
):
    services.ledger_credit(
        actor=None, account=account, amount=usd("500"), kind="seat_credit", description="x"
    )
    sub, quote, order = services.subscription_change_plan(
        actor=owner_of(account), subscription=subscription, price=enterprise, now=NOW
    )
    # (62 - 31) x 3 seats = 93 for the month; 22 of 31 days left in New York.
    assert quote.kind == "upgrade" and quote.amount == usd("66.00")
    assert order.status == "paid" and sub.price == enterprise
    assert "benefits apply immediately" in quote.explain()


def test_an_unpaid_upgrade_keeps_the_old_plan(account, subscription, enterprise):
    sub, _, order = services.subscription_change_plan(
        actor=owner_of(account), subscription=subscription, price=enterprise, now=NOW
    )
    assert order.status == Order.Status.AWAITING_PAYMENT and sub.price != enterprise


def test_downgrade_waits_for_the_next_cycle_and_refunds_nothing(account, subscription, starter):
    sub, quote, order = services.subscription_change_plan(
        actor=owner_of(account), subscription=subscription, price=starter, now=NOW
    )
    assert quote.kind == "downgrade" and quote.amount == usd("0") and order is None
    assert sub.price != starter and sub.pending_price == starter
    assert "Nothing of the current period is refunded" in quote.explain()
    services.ledger_credit(
        actor=None, account=account, amount=usd("500"), kind="seat_credit", description="x"
    )
    services.subscriptions_renew_due(now=AFTER_END)
    sub.refresh_from_db()
    assert sub.price == starter and sub.pending_price is None
    renewal = Order.objects.get()
    assert renewal.total == Decimal("46.50")  # 3 seats at the new price


def test_choosing_the_current_plan_undoes_a_pending_downgrade(account, subscription, starter):
    services.subscription_change_plan(
        actor=owner_of(account), subscription=subscription, price=starter, now=NOW
    )
    sub, quote, _ = services.subscription_change_plan(
        actor=owner_of(account), subscription=subscription, price=subscription.price, now=NOW
    )
    assert quote.kind == "stay" and sub.pending_price is None
    from accounts.models import AuditEvent

    assert AuditEvent.objects.filter(action="subscription.downgrade_withdrawn").count() == 1


def test_plans_change_only_within_currency_and_interval(account, subscription):
    product = Product.objects.create(code="y", name="Yearly", kind="subscription")
    yearly = Price.objects.create(
        product=product, currency="USD", amount=Decimal("300"), scheme="per_seat", interval="year"
    )
    with pytest.raises(PortalError) as exc:
        services.subscription_change_plan(
            actor=owner_of(account), subscription=subscription, price=yearly, now=NOW
        )
    assert exc.value.field == "price"


def test_members_cannot_change_plans(account, subscription, enterprise):
    from accounts.errors import NotAllowed

    member = MembershipFactory(account=account, role="member", has_seat=False)
    with pytest.raises(NotAllowed):
        services.subscription_change_plan(
            actor=member.user, subscription=subscription, price=enterprise, now=NOW
        )
    assert Subscription.objects.get().price != enterprise


def test_page_preview_then_confirm_a_downgrade(client, account, subscription, starter):
    client.force_login(owner_of(account))
    url = reverse("billing_plan_change")
    with time_machine.travel(NOW, tick=False):
        page = client.post(url, {"account_id": account.pk, "price": starter.pk})
        body = page.content.decode()
        assert page.status_code == 200 and 'data-testid="plan-quote"' in body
        assert "takes effect when this period ends on April 1, 2026" in body
        response = client.post(
            url,
            {
                "account_id": account.pk,
                "price": starter.pk,
                "expected": "0.00",
                "action": "confirm",
            },
            follow=True,
        )
    assert "You move to Starter on April 1, 2026" in response.content.decode()
    assert Subscription.objects.get().pending_price == starter
    assert date(2026, 4, 1) == Subscription.objects.get().current_period_end
