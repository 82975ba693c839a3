"""Starting a plan: a free trial (first plan only) or the first period paid now."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.errors import NotAllowed, PortalError
from billing import services
from billing.models import Order, OrderLine, Price, Product, Subscription
from tests.billing.helpers import usd
from tests.factories import (
    AccountFactory,
    MembershipFactory,
    ResellerFactory,
    UserFactory,
    owner_of,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 5, 10, 15, 0, tzinfo=ZoneInfo("UTC"))


@pytest.fixture
def price():
    product = Product.objects.create(code="pro", name="Professional", kind="subscription")
    return Price.objects.create(
        product=product, currency="USD", amount=Decimal("29"), scheme="per_seat", interval="month"
    )


@pytest.fixture
def account():
    return AccountFactory(seats_paid=1)


def test_first_period_waits_for_payment_then_starts(account, price):
    sub, order = services.subscription_start(
        actor=owner_of(account), account=account, price=price, quantity=3, now=NOW
    )
    assert sub.status == "pending" and order.status == "awaiting_payment"
    line = OrderLine.objects.get()
    assert line.first_purchase and line.effect == "start" and line.amount == Decimal("87")
    assert (line.period_start, line.period_end) == (date(2026, 5, 10), date(2026, 6, 10))
    account.refresh_from_db()
    assert account.seats_paid == 1  # nothing yet
    staff = UserFactory(is_staff=True)
    staff.groups.add(Group.objects.get(name="Billing reviewer"))
    services.payment_record_manual(actor=staff, order=order, reference="BANK-1")
    sub.refresh_from_db()
    account.refresh_from_db()
    assert sub.status == "active" and account.seats_paid == 3


def test_first_period_paid_by_credit_is_instant(account, price):
    services.ledger_credit(
        actor=None, account=account, amount=usd("100"), kind="refund_credit", description="x"
    )
    sub, order = services.subscription_start(
        actor=owner_of(account), account=account, price=price, quantity=2, now=NOW
    )
    assert order.status == "paid" and sub.status == "active"


def test_trial_is_free_and_its_first_charge_is_a_first_purchase(account, price):
    with time_machine.travel(NOW, tick=False):
        sub, order = services.subscription_start(
            actor=owner_of(account), account=account, price=price, quantity=2, trial=True
        )
    assert order is None and sub.status == "trialing" and sub.trial_end == date(2026, 5, 24)
    account.refresh_from_db()
    assert account.seats_paid == 2
    services.ledger_credit(
        actor=None, account=account, amount=usd("100"), kind="refund_credit", description="x"
    )
    services.subscriptions_renew_due(now=datetime(2026, 5, 24, 12, 0, tzinfo=ZoneInfo("UTC")))
    sub.refresh_from_db()
    line = OrderLine.objects.get()
    assert sub.status == "active" and line.first_purchase and line.amount == Decimal("58")
    assert (sub.current_period_start, sub.current_period_end) == (
        date(2026, 5, 24),
        date(2026, 6, 24),
    )


def test_one_plan_at_a_time_and_one_trial_per_account(account, price):
    services.subscription_start(
        actor=owner_of(account), account=account, price=price, quantity=1, trial=True, now=NOW
    )
    with pytest.raises(PortalError, match="already has a plan"):
        services.subscription_start(
            actor=owner_of(account), account=account, price=price, quantity=1, now=NOW
        )
    Subscription.objects.update(status="cancelled")
    with pytest.raises(PortalError, match="first plan") as exc:
        services.subscription_start(
            actor=owner_of(account), account=account, price=price, quantity=1, trial=True, now=NOW
        )
    assert exc.value.field == "trial"


def test_seats_must_cover_those_in_use(account, price):
    MembershipFactory.create_batch(2, account=account, has_seat=True)
    with pytest.raises(PortalError) as exc:
        services.subscription_start(
            actor=owner_of(account), account=account, price=price, quantity=2, now=NOW
        )
    assert exc.value.field == "quantity" and "at least 3 seats" in exc.value.message


def test_wrong_currency_reseller_and_members_are_refused(account, price):
    product = Product.objects.create(code="eu", name="EU plan", kind="subscription")
    euro = Price.objects.create(
        product=product, currency="EUR", amount=Decimal("29"), scheme="per_seat", interval="month"
    )
    with pytest.raises(PortalError, match="billed in USD"):
        services.subscription_start(
            actor=owner_of(account), account=account, price=euro, quantity=1, now=NOW
        )
    member = MembershipFactory(account=account, role="member", has_seat=False)
    with pytest.raises(NotAllowed):
        services.subscription_start(
            actor=member.user, account=account, price=price, quantity=1, now=NOW
        )
    resold = AccountFactory(reseller=ResellerFactory(name="Northwind"))
    with pytest.raises(PortalError, match="Northwind"):
        services.subscription_start(
            actor=owner_of(resold), account=resold, price=price, quantity=1, now=NOW
        )


def test_cancelling_the_first_order_means_the_plan_never_starts(account, price):
    sub, order = services.subscription_start(
        actor=owner_of(account), account=account, price=price, quantity=1, now=NOW
    )
    services.order_cancel(actor=owner_of(account), order=order)
    sub.refresh_from_db()
    assert sub.status == "cancelled"
    # ...so a plan can be started again.
    services.subscription_start(
        actor=owner_of(account), account=account, price=price, quantity=1, now=NOW
    )


def test_page_starts_a_trial(client, account, price):
    client.force_login(owner_of(account))
    page = client.get(reverse("billing_plan")).content.decode()
    assert 'data-testid="start-plan"' in page and "14-day free trial" in page
    response = client.post(
        reverse("subscription_start"),
        {"account_id": account.pk, "price": price.pk, "quantity": 2, "trial": "on"},
        follow=True,
    )
    assert "Your trial of Professional runs through" in response.content.decode()
    assert Subscription.objects.get().status == "trialing"
    response = client.post(
        reverse("subscription_start"), {"account_id": account.pk, "price": price.pk, "quantity": 0}
    )
    assert response.status_code == 400
    assert Order.objects.count() == 0


def test_api_starts_a_plan_and_names_bad_fields(api_client, account, price):
    api_client.force_authenticate(owner_of(account))
    url = f"/api/v1/accounts/{account.pk}/subscriptions/"
    assert api_client.post(url, {"price": price.pk}, format="json").status_code == 400
    bad = api_client.post(url, {"price": 999999, "quantity": 1}, format="json")
    assert bad.status_code == 400 and "price" in bad.json()
    response = api_client.post(
        url, {"price": price.pk, "quantity": 2, "trial": True}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["subscription"]["status"] == "trialing"
    again = api_client.post(url, {"price": price.pk, "quantity": 2}, format="json")
    assert again.status_code == 400 and "already has a plan" in str(again.json())
