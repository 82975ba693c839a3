"""Payment recovery: a failed card charge is tried again after 1, 3 and 5 days, each
failure mailed with what happens next and a link to pay; the Billing page shows the next
attempt. A retry is made once, however often the job runs."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.test import Client

from billing import services
from billing.models import Payment, Price, Product
from tests.factories import AccountFactory, owner_of

pytestmark = pytest.mark.django_db
WHEN = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def unpaid_order():
    product = Product.objects.create(code="plugin", name="Plugin", kind="plugin")
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("49"), interval="one_off"
    )
    account = AccountFactory(name="Acme")
    order = services.purchase_place(
        actor=owner_of(account), account=account, items=[{"price": price.pk}], now=WHEN
    )
    Payment.objects.filter(order=order).update(gateway="stripe")  # a card charge
    return account, order


def fail_pending(order, message="Your card was declined."):
    payment = order.payments.get(status="pending")
    return services.payment_failed(payment=payment, message=message)


def test_failed_charges_are_retried_on_the_schedule_then_stop(
    unpaid_order, django_capture_on_commit_callbacks, monkeypatch
):
    from billing import tasks

    monkeypatch.setattr(
        tasks.request_payment, "delay", lambda *a, **k: None
    )  # the gateway is not called here
    _account, order = unpaid_order
    schedule = []
    for day in range(4):
        with time_machine.travel(WHEN + timedelta(days=10 * day), tick=False):
            with django_capture_on_commit_callbacks(execute=True):
                payment = fail_pending(order)
            schedule.append(payment.next_attempt_at)
        if payment.next_attempt_at is None:
            break
        with time_machine.travel(payment.next_attempt_at + timedelta(minutes=1), tick=False):
            assert services.payments_retry_due() == 1
            assert services.payments_retry_due() == 0  # once
        Payment.objects.filter(order=order, status="pending").update(gateway="stripe")
    gaps = [
        (at - (WHEN + timedelta(days=10 * n))).days if at else None for n, at in enumerate(schedule)
    ]
    assert gaps == [1, 3, 5, None]
    assert order.payments.count() == 4
    failed_mails = [m for m in mail.outbox if "failed" in m.subject]
    assert len(failed_mails) == 4
    assert "We try the card again on March 3, 2026." in failed_mails[0].body
    assert "We will not try this card again" in failed_mails[-1].body
    assert "/settings/billing/" in failed_mails[0].body
    assert failed_mails[0].alternatives[0][1] == "text/html"


def test_no_retry_once_the_order_is_paid(unpaid_order, billing_staff):
    _account, order = unpaid_order
    payment = fail_pending(order)
    services.payment_record_manual(actor=billing_staff, order=order, reference="WIRE")
    with time_machine.travel(payment.next_attempt_at + timedelta(minutes=1), tick=False):
        assert services.payments_retry_due() == 0
    assert order.payments.filter(status="pending").count() == 0


def test_the_billing_page_shows_the_next_attempt(unpaid_order):
    account, order = unpaid_order
    with time_machine.travel(WHEN, tick=False):
        fail_pending(order)
    client = Client()
    client.force_login(owner_of(account))
    client.get("/")
    page = client.get(f"/settings/billing/orders/{order.pk}/").text
    assert "We try the card again on March 3, 2026." in page
    assert f'href="/settings/billing/orders/{order.pk}/"' in client.get("/settings/billing/").text
