"""What can happen between a refund request and its money: credits spent meanwhile, a card
refund that stays pending, fails for good or fails after it succeeded, a partial refund
that corrects a price, a purchase being refunded, and refunds paid before billing
recorded them (a review of the issue "money has one owner")."""

import importlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import AuditEvent
from billing import gateways
from billing import services as billing_services
from billing.gateways import ChargeResult
from billing.models import LedgerEntry, LineRefund, OrderLine, Payment, Price, Product
from refunds import services
from refunds.models import RefundPayout
from tests.factories import AccountFactory, owner_of
from tests.refunds.conftest import MONDAY
from tests.refunds.test_refunded_once import DAY_ONE, approve_all, ask

pytestmark = pytest.mark.django_db


class Gateway:
    """A card gateway whose refunds answer as the test says, and that counts its calls."""

    name = "stripe"
    outcome = "succeeded"
    calls: list = []

    def charge(self, *, account, amount, idempotency_key, description, payment_id=None):
        return ChargeResult(status="succeeded", reference=f"pi_{payment_id}")

    def refund(self, *, charge_reference, amount, idempotency_key, metadata):
        Gateway.calls.append((idempotency_key, amount.amount))
        if Gateway.outcome == "failed":
            return ChargeResult(status="failed", message="The charge is too old to refund.")
        status = "pending" if Gateway.outcome == "pending" else "succeeded"
        return ChargeResult(status=status, reference=f"re_{idempotency_key[-6:]}")


@pytest.fixture
def card(monkeypatch, settings):
    from refunds import tasks

    monkeypatch.setitem(gateways.GATEWAYS, "stripe", f"{__name__}.Gateway")
    # The payout job is not run when the outbox publishes it: the tests run it themselves.
    monkeypatch.setattr(tasks.refund_payout_run, "apply_async", lambda *args, **kwargs: None)
    settings.BILLING_GATEWAY = "stripe"
    Gateway.outcome, Gateway.calls = "succeeded", []
    return Gateway


def price(code, kind, amount, currency="USD", **extra):
    product = Product.objects.create(code=code, name=code.title(), kind=kind, **extra)
    return Price.objects.create(
        product=product, currency=currency, amount=Decimal(amount), interval="one_off"
    )


def buy(account, prices, now=MONDAY):
    order = billing_services.purchase_place(
        actor=owner_of(account), account=account, items=[{"price": p.pk} for p in prices], now=now
    )
    for payment in order.payments.filter(status="pending"):
        billing_services.payment_request(payment_id=payment.pk)
    order.refresh_from_db()
    return order


@pytest.fixture
def acme():
    return AccountFactory(name="Acme", timezone="America/New_York")


def test_agreed_credits_leave_use_at_once_while_the_card_refund_is_on_its_way(
    card, acme, billing_staff
):
    pack = buy(acme, [price("credits", "credit_pack", "100", units=1000)]).lines.get()
    request = approve_all(ask(acme, [pack]), billing_staff)
    pack.refresh_from_db()
    assert (pack.units_refunded, pack.units_left, pack.refunded) == (1000, 0, 0)
    card.outcome = "pending"
    payout = request.payouts.get()
    services.refund_payout_run(payout_id=payout.pk)
    with pytest.raises(PortalError, match="Only 0 Credits credits are left"):
        billing_services.credits_use(
            actor=owner_of(acme), account=acme, product=pack.product, units=1, reference="x"
        )
    services.refund_payout_succeeded(payout=payout, reference="re_done")  # Stripe's webhook
    pack.refresh_from_db()
    assert (pack.refunded, pack.units_refunded, pack.units_used) == (Decimal("100.00"), 1000, 0)


def test_credits_spent_after_the_request_lower_what_staff_may_approve(
    settings, acme, billing_staff
):
    settings.BILLING_GATEWAY = "manual"
    order = buy(acme, [price("credits", "credit_pack", "100", units=1000)])
    billing_services.payment_record_manual(actor=billing_staff, order=order, reference="B")
    pack = order.lines.get()
    request = ask(acme, [pack])  # nothing used yet: all of it (acelle §2.1)
    assert request.lines.get().engine_amount == Decimal("100.00")
    billing_services.credits_use(
        actor=owner_of(acme), account=acme, product=pack.product, units=600, reference="spent"
    )
    line = request.lines.get()
    with pytest.raises(PortalError) as refused:
        services.refund_line_decide(actor=billing_staff, line=line, approve=True)
    assert "At most 40.00 USD can be approved" in refused.value.message
    assert "the policy now allows 40.00 USD" in refused.value.message  # §2.2, unit rate
    approve_all(request, billing_staff, amounts={pack.pk: "40.00"})
    pack.refresh_from_db()
    assert (pack.units_used, pack.units_refunded, pack.units_left) == (600, 400, 0)


def test_a_card_refund_the_gateway_refuses_for_good_is_paid_another_way(card, acme, billing_staff):
    plugin = buy(acme, [price("plugin", "plugin", "49")]).lines.get()
    request = approve_all(ask(acme, [plugin]), billing_staff)
    payout = request.payouts.get()
    card.outcome = "failed"
    services.refund_payout_run(payout_id=payout.pk)
    payout.refresh_from_db()
    assert payout.status == "failed" and "too old" in payout.error
    transfer = services.refund_payout_pay_another_way(
        actor=billing_staff, payout=payout, method="manual"
    )
    assert (transfer.method, transfer.status) == ("manual", "pending")
    services.refund_payout_record_manual(actor=billing_staff, payout=transfer, reference="WIRE")
    request.refresh_from_db()
    plugin.refresh_from_db()
    assert request.state == "paid" and plugin.refunded == Decimal("49.00")
    assert Payment.objects.get(order=plugin.order).refunded == Decimal("49.00")
    assert AuditEvent.objects.filter(action="refund.payout_switched").count() == 1


def test_or_as_account_credit_at_once(card, acme, billing_staff):
    plugin = buy(acme, [price("plugin", "plugin", "49")]).lines.get()
    request = approve_all(ask(acme, [plugin]), billing_staff)
    card.outcome = "failed"
    services.refund_payout_run(payout_id=request.payouts.get().pk)
    services.refund_payout_pay_another_way(
        actor=billing_staff, payout=request.payouts.get(), method="credit"
    )
    request.refresh_from_db()
    assert request.state == "credited"
    assert LedgerEntry.objects.get(kind="refund_credit").amount == Decimal("49.00")
    assert LineRefund.objects.get(line=plugin).method == "credit"
    assert Payment.objects.get(order=plugin.order).refunded == 0


def test_a_refund_that_fails_after_it_succeeded_is_told_to_the_billing_leads(
    card, acme, billing_staff, settings, django_capture_on_commit_callbacks
):
    from refunds import webhooks

    settings.REFUND_BILLING_LEADS = ["leads@vendor.example"]
    plugin = buy(acme, [price("plugin", "plugin", "49")]).lines.get()
    request = approve_all(ask(acme, [plugin]), billing_staff)
    payout = request.payouts.get()
    services.refund_payout_run(payout_id=payout.pk)
    payout.refresh_from_db()
    assert payout.status == "succeeded"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):  # Stripe may tell it twice
            webhooks.settle_refund(
                {
                    "id": payout.reference,
                    "status": "failed",
                    "failure_reason": "expired_or_canceled_card",
                    "metadata": {
                        "refund_payout_id": str(payout.pk),
                        "refund_key": payout.idempotency_key,
                    },
                }
            )
    payout.refresh_from_db()
    assert payout.status == "succeeded" and "came back failed" in payout.error
    assert AuditEvent.objects.filter(action="refund.payout_reversed").count() == 1
    assert [m.to for m in mail.outbox] == [["leads@vendor.example"]]
    assert "came back failed" in mail.outbox[0].subject


def test_a_pending_card_refund_is_never_asked_for_again(card, acme, billing_staff):
    plugin = buy(acme, [price("plugin", "plugin", "49")]).lines.get()
    payout = approve_all(ask(acme, [plugin]), billing_staff).payouts.get()
    card.outcome = "pending"
    for _ in range(3):  # the job delivered again, days later
        services.refund_payout_run(payout_id=payout.pk)
    assert len(card.calls) == 1


def test_a_payout_that_no_longer_fits_fails_before_the_gateway_is_called(card, acme, billing_staff):
    plugin = buy(acme, [price("plugin", "plugin", "49")]).lines.get()
    payout = approve_all(ask(acme, [plugin]), billing_staff).payouts.get()
    # Something else gave 9.00 back on it meanwhile (staff, by hand).
    billing_services.refund_record(
        actor=billing_staff,
        account=acme,
        method="credit",
        amounts={plugin.pk: Decimal("9")},
        reference="GOODWILL",
        key="goodwill-1",
    )
    services.refund_payout_run(payout_id=payout.pk)
    payout.refresh_from_db()
    assert payout.status == "failed" and "has 40.00 USD left to refund" in payout.error
    assert card.calls == []


def test_jpy_units_paid_back_are_rounded_half_up(card, billing_staff):
    tokyo = AccountFactory(name="Tokyo", timezone="Asia/Tokyo", currency="JPY")
    pack = buy(tokyo, [price("credits", "credit_pack", "1000", currency="JPY", units=3)])
    pack = pack.lines.get()
    billing_services.credits_use(
        actor=owner_of(tokyo), account=tokyo, product=pack.product, units=1, reference="u"
    )
    later = MONDAY + timedelta(days=8)
    request = ask(tokyo, [pack], now=later)
    assert request.lines.get().engine_amount == Decimal("667")  # 2 of 3 units, §2.2
    request = approve_all(request, billing_staff, amounts={pack.pk: "334"}, now=later)
    services.refund_payout_run(payout_id=request.payouts.get().pk)
    pack.refresh_from_db()
    # 334 JPY is 1.002 units at 333.33 a unit: one unit goes back, one stays usable.
    assert (pack.refunded, pack.units_refunded, pack.units_left) == (Decimal("334"), 1, 1)


@pytest.fixture
def plan(settings, billing_staff):
    """An account on a per-seat plan that added a seat on day 20."""
    settings.BILLING_GATEWAY = "manual"
    account = AccountFactory(timezone="America/New_York", seats_paid=1)
    price_ = Price.objects.create(
        product=Product.objects.create(code="pro", name="Pro", kind="subscription"),
        currency="USD",
        amount=Decimal("29"),
        scheme="per_seat",
        interval="month",
    )
    subscription, order = billing_services.subscription_start(
        actor=owner_of(account), account=account, price=price_, quantity=1, now=MONDAY
    )
    billing_services.payment_record_manual(
        actor=billing_staff, order=order, reference="B", now=MONDAY
    )
    later = MONDAY + timedelta(days=20)
    subscription, _, seats = billing_services.subscription_change_seats(
        actor=owner_of(account), subscription=subscription, quantity=2, now=later
    )
    billing_services.payment_record_manual(
        actor=billing_staff, order=seats, reference="B2", now=later
    )
    return account, subscription, seats.lines.get(), later + timedelta(days=1)


def test_part_of_a_seat_charge_given_back_corrects_the_price_and_takes_nothing(plan, billing_staff):
    account, subscription, seat_line, when = plan
    request = ask(account, [seat_line], reason="billing_error", payout="credit", now=when)
    assert request.lines.get().engine_outcome == "review"  # acelle §1.2, billed in error
    approve_all(request, billing_staff, amounts={seat_line.pk: "5.00"}, now=when)
    subscription.refresh_from_db()
    account.refresh_from_db()
    assert (subscription.status, subscription.quantity, account.status) == ("active", 2, "active")


def test_a_seat_charge_given_back_whole_removes_the_seat_and_keeps_the_plan(plan, billing_staff):
    account, subscription, seat_line, when = plan
    request = ask(account, [seat_line], reason="billing_error", payout="credit", now=when)
    approve_all(request, billing_staff, now=when)  # the whole of it
    subscription.refresh_from_db()
    account.refresh_from_db()
    assert (subscription.status, subscription.quantity, account.status) == ("active", 1, "active")
    assert account.seats_paid == 1


def test_a_purchase_being_refunded_is_not_offered_again(settings, acme, billing_staff, client):
    settings.BILLING_GATEWAY = "manual"
    order = buy(acme, [price("plugin", "plugin", "49")])
    billing_services.payment_record_manual(actor=billing_staff, order=order, reference="B")
    request = approve_all(ask(acme, order.lines.all()), billing_staff)
    assert request.state == "paying"
    client.force_login(owner_of(acme))
    page = client.get(reverse("billing_refunds")).content.decode()
    assert "Refundable today" not in page
    assert reverse("refund_request_new", args=[order.pk]) not in page
    assert (
        f'In refund request <a href="{reverse("refund_request_detail", args=[request.number])}">{request.number}</a> (paying out)'
        in page
    )
    form = client.get(reverse("refund_request_new", args=[order.pk])).content.decode()
    assert 'data-testid="nothing-left"' in form and request.number in form


def test_the_backfill_caps_a_legacy_double_refund_still_in_flight(settings, acme, billing_staff):
    """Before the change: RR-A paid 49.00 back; RR-B, for the same purchase, was approved
    too and its transfer is still to make. After 0005, RR-B pays nothing more."""
    settings.BILLING_GATEWAY = "manual"
    backfill = importlib.import_module("refunds.migrations.0005_backfill_line_refunds").backfill
    order = buy(acme, [price("plugin", "plugin", "49")])
    billing_services.payment_record_manual(actor=billing_staff, order=order, reference="B")
    line = order.lines.get()
    first = approve_all(ask(acme, [line]), billing_staff)
    services.refund_payout_record_manual(
        actor=billing_staff, payout=first.payouts.get(), reference="W1"
    )
    # The database as it was: the payout paid, nothing recorded on the line; and a second
    # request for the same purchase approved by the old code.
    LineRefund.objects.all().delete()
    OrderLine.objects.filter(pk=line.pk).update(refunded=0)
    Payment.objects.filter(order=order).update(refunded=0)
    second = approve_all(ask(acme, [line], now=DAY_ONE + timedelta(days=1)), billing_staff)
    assert second.payouts.get().status == "pending"
    Payment.objects.filter(order=order).update(refunded=Decimal("49"))  # the old code's write
    RefundPayout.objects.update(allocation={})
    backfill(apps, None)
    line.refresh_from_db()
    assert line.refunded == Decimal("49.00")
    payout = second.payouts.get()
    assert payout.status == "failed" and "nothing is left to pay back" in payout.error
    assert payout.allocation == {}


@pytest.mark.django_db
def test_each_step_mail_names_its_own_state_even_when_sent_late(
    django_capture_on_commit_callbacks, paid_order, billing_staff
):
    """A worker may send a request's mails after it moved on: each still says its step."""
    from django.core import mail

    from refunds import services as refund_services
    from tests.factories import owner_of

    account, order = paid_order(when=timezone.now())
    with django_capture_on_commit_callbacks(execute=False) as later:
        request = refund_services.refund_request_submit(
            actor=owner_of(account),
            account=account,
            line_ids=[line.pk for line in order.lines.all()],
            reason="no_longer_needed",
            payout_method="credit",
        )
        refund_services.refund_request_acknowledge(actor=billing_staff, request=request)
    mail.outbox.clear()
    for callback in later:
        callback()
    subjects = [m.subject for m in mail.outbox if m.to == [owner_of(account).email]]
    assert f"{request.number}: Received" in subjects[0]
    assert any("Acknowledged" in s for s in subjects[1:])
