"""Regression tests for the review of the seat-change slice."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts import services as account_services
from accounts.errors import PortalError
from accounts.models import AuditEvent
from billing import gateways, selectors, services
from billing.gateways import ChargeResult
from billing.models import LedgerEntry, Order, Payment, Subscription
from billing.money import Money
from tests.billing.helpers import NOW, usd
from tests.factories import MembershipFactory, ResellerFactory, UserFactory, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Billing reviewer"))
    return user


def change(account, subscription, quantity, **kwargs):
    return services.subscription_change_seats(
        actor=owner_of(account), subscription=subscription, quantity=quantity, now=NOW, **kwargs
    )


def test_no_second_change_while_an_order_awaits_payment(account, subscription, staff):
    _, _, order = change(account, subscription, 5)
    for quantity in (5, 7, 2):
        with pytest.raises(PortalError, match=f"{order.number} awaits payment"):
            change(account, subscription, quantity)
    assert Order.objects.count() == 1
    services.payment_record_manual(actor=staff, order=order, reference="R1")
    subscription.refresh_from_db()
    assert subscription.quantity == 5  # what the confirmation said, and nothing else
    change(account, subscription, 6)  # allowed again once paid


def test_no_change_once_the_period_has_ended(account, subscription):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    after = datetime(2026, 4, 1, 12, 0, tzinfo=ZoneInfo("UTC"))
    with pytest.raises(PortalError, match="period ended on 01 April 2026"):
        services.subscription_change_seats(
            actor=owner_of(account), subscription=subscription, quantity=50, now=after
        )
    assert not Order.objects.exists()


def test_cancelling_an_unpaid_order_returns_its_credit(account, subscription, client):
    services.ledger_credit(
        actor=None, account=account, amount=usd("10"), kind="seat_credit", description="earlier"
    )
    _, _, order = change(account, subscription, 5)
    assert order.credit_applied == Decimal("10")
    assert selectors.ledger_balance(account=account, currency="USD") == usd("0")
    client.force_login(owner_of(account))
    response = client.post(
        reverse("order_cancel", args=[order.pk]), {"account_id": account.pk}, follow=True
    )
    assert "is cancelled; $10.00 of credit is back" in response.content.decode()
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert selectors.ledger_balance(account=account, currency="USD") == usd("10")
    assert Payment.objects.get(order=order).status == "failed"
    assert LedgerEntry.objects.filter(kind="order_cancelled").count() == 1
    with pytest.raises(PortalError, match="only an unpaid order"):
        services.order_cancel(actor=owner_of(account), order=order)


def test_members_cannot_cancel_orders(account, subscription, client):
    _, _, order = change(account, subscription, 5)
    member = MembershipFactory(account=account, role="member", has_seat=False)
    client.force_login(member.user)
    assert client.post(reverse("order_cancel", args=[order.pk])).status_code == 403
    order.refresh_from_db()
    assert order.status == "awaiting_payment"


class FakeGateway:
    name = "fake"
    result = ChargeResult(status="succeeded", reference="ch_1")
    calls = 0

    def charge(self, **kwargs):
        FakeGateway.calls += 1
        return FakeGateway.result


@pytest.fixture
def fake_gateway(monkeypatch, settings):
    monkeypatch.setitem(gateways.GATEWAYS, "fake", f"{__name__}.FakeGateway")
    settings.BILLING_GATEWAY = "fake"
    FakeGateway.calls = 0
    return FakeGateway


def test_a_gateway_success_gives_the_seats_at_once(
    account, subscription, fake_gateway, django_capture_on_commit_callbacks
):
    fake_gateway.result = ChargeResult(status="succeeded", reference="ch_1")
    with django_capture_on_commit_callbacks(execute=True):
        _, _, order = change(account, subscription, 5)
    order.refresh_from_db()
    account.refresh_from_db()
    assert order.status == "paid" and account.seats_paid == 5
    payment = Payment.objects.get(order=order)
    assert payment.reference == "ch_1"
    services.payment_request(payment_id=payment.pk)  # a second run charges nothing
    assert fake_gateway.calls == 1


def test_a_gateway_failure_never_overwrites_a_success(
    account, subscription, fake_gateway, staff, django_capture_on_commit_callbacks
):
    fake_gateway.result = ChargeResult(status="failed", message="card declined")
    with django_capture_on_commit_callbacks(execute=False):
        _, _, order = change(account, subscription, 5)
    gateway_payment = Payment.objects.get(order=order)
    # Staff record the transfer as a payment of its own: the gateway's, if it succeeds
    # later all the same, is held as credit (tests/billing/test_stripe.py).
    payment = services.payment_record_manual(actor=staff, order=order, reference="BANK")
    assert payment.pk != gateway_payment.pk
    services.payment_failed(payment=payment, message="card declined")
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.reference == "BANK"
    assert not AuditEvent.objects.filter(action="payment.failed").exists()
    assert payment.order.status == "paid"


def test_a_failed_payment_is_recorded_and_audited(
    account, subscription, fake_gateway, django_capture_on_commit_callbacks
):
    fake_gateway.result = ChargeResult(status="failed", message="card declined")
    with django_capture_on_commit_callbacks(execute=True):
        _, _, order = change(account, subscription, 5)
    payment = Payment.objects.get(order=order)
    assert payment.status == "failed" and payment.failure_message == "card declined"
    assert AuditEvent.objects.filter(action="payment.failed").count() == 1


def test_trial_seats_change_without_charge_or_credit(account, subscription):
    Subscription.objects.filter(pk=subscription.pk).update(status="trialing")
    subscription.refresh_from_db()
    sub, quote, order = change(account, subscription, 1)
    assert order is None and quote.amount == usd("0") and quote.trial
    assert "free" in quote.explain()
    assert sub.quantity == 1 and not LedgerEntry.objects.exists()
    sub, quote, order = change(account, sub, 4)
    assert order is None and sub.quantity == 4
    account.refresh_from_db()
    assert account.seats_paid == 4


def test_reseller_accounts_change_seats_through_their_reseller(account, subscription, client):
    account.reseller = ResellerFactory(name="Northwind")
    account.save()
    with pytest.raises(PortalError, match="provided by Northwind"):
        change(account, subscription, 5)
    client.force_login(owner_of(account))
    page = client.get(reverse("settings_billing")).content.decode()
    assert "Preview the change" not in page


def test_the_preview_refuses_what_the_confirmation_would(account, subscription, client):
    MembershipFactory.create_batch(2, account=account, has_seat=True)  # 3 in use
    with pytest.raises(PortalError, match="3 of 3"):
        services.subscription_seat_quote(
            subscription=subscription, quantity=2, today=date(2026, 3, 10), now=NOW
        )


def test_a_confirmation_at_a_stale_amount_changes_nothing(account, subscription):
    with pytest.raises(PortalError, match="changed since your preview"):
        change(account, subscription, 5, expected_amount=usd("99.99"))
    assert not Order.objects.exists()
    _, quote, order = change(account, subscription, 5, expected_amount=usd("44.00"))
    assert order is not None and quote.amount == usd("44.00")


def test_staff_do_not_set_seats_paid_by_hand_once_a_plan_owns_them(account, subscription, staff):
    admin_user = UserFactory(is_staff=True)
    admin_user.groups.add(Group.objects.get(name="Administrator"))
    with pytest.raises(PortalError, match="follow the account's plan"):
        account_services.account_set_seats_paid(actor=admin_user, account=account, seats_paid=10)
    account.refresh_from_db()
    assert account.seats_paid == 3


def test_money_in_the_api_has_two_decimals(account, subscription, api_client):
    change(account, subscription, 5)
    api_client.force_authenticate(owner_of(account))
    order = api_client.get(f"/api/v1/accounts/{account.pk}/orders/").json()["results"][0]
    assert order["total"] == "44.00" and order["amount_due"] == "44.00"
    assert order["lines"][0]["amount"] == "44.00"
    assert Money(Decimal(order["total"]), "USD") == usd("44")


def test_a_gateway_success_after_cancel_is_held_as_credit(
    account, subscription, fake_gateway, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        _, _, order = change(account, subscription, 5)
    payment = Payment.objects.get(order=order)
    Payment.objects.filter(pk=payment.pk).update(gateway="fake")
    services.order_cancel(actor=owner_of(account), order=order)
    # The charge had already gone out; the gateway now reports success.
    Payment.objects.filter(pk=payment.pk).update(status="pending")
    services.payment_succeeded(payment=payment, reference="ch_late", actor=None)
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.reference == "ch_late"
    assert selectors.ledger_balance(account=account, currency="USD") == usd("44.00")
    subscription.refresh_from_db()
    assert subscription.quantity == 3


def test_a_failed_charge_can_be_paid_again_with_a_new_key(
    client, account, subscription, fake_gateway, django_capture_on_commit_callbacks
):
    fake_gateway.result = ChargeResult(status="failed", message="Your card was declined.")
    with django_capture_on_commit_callbacks(execute=True):
        _, _, order = change(account, subscription, 5)
    first = Payment.objects.get(order=order)
    assert first.status == "failed"
    client.force_login(owner_of(account))
    page = client.get(reverse("billing_order", args=[order.pk])).content.decode()
    assert 'data-testid="card-failed"' in page and "Your card was declined." in page
    assert "now</button>" in page

    fake_gateway.result = ChargeResult(status="succeeded", reference="ch_2")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("order_pay", args=[order.pk]), {"account_id": account.pk})
    assert response.status_code == 302
    order.refresh_from_db()
    account.refresh_from_db()
    assert order.status == "paid" and account.seats_paid == 5
    second = Payment.objects.exclude(pk=first.pk).get(order=order)
    assert second.idempotency_key != first.idempotency_key
    assert second.idempotency_key.endswith(f"-order-{order.pk}-2")
    assert AuditEvent.objects.filter(action="payment.retried").count() == 1
    with pytest.raises(PortalError, match="is paid"):
        services.payment_retry(actor=owner_of(account), order=order)


def test_no_second_attempt_while_one_is_in_progress(
    account, subscription, fake_gateway, django_capture_on_commit_callbacks
):
    fake_gateway.result = ChargeResult(status="pending")
    with django_capture_on_commit_callbacks(execute=True):
        _, _, order = change(account, subscription, 5)
    with pytest.raises(PortalError, match="still in progress"):
        services.payment_retry(actor=owner_of(account), order=order)
    assert Payment.objects.filter(order=order).count() == 1


def test_manual_orders_are_not_charged_again(account, subscription):
    _, _, order = change(account, subscription, 5)
    with pytest.raises(PortalError, match="bank transfer"):
        services.payment_retry(actor=owner_of(account), order=order)
