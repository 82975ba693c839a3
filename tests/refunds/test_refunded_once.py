"""A purchase is refunded once: what came back is recorded on its line by billing, the
engine and staff see it, the customer is told, and the refund takes back what it paid
for (issue "money has one owner")."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse

from accounts.errors import PortalError
from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.models import (
    LedgerEntry,
    Licence,
    LineRefund,
    OrderLine,
    Payment,
    Price,
    Product,
    Subscription,
)
from billing.money import Money
from refunds import services
from refunds.models import RefundLine, RefundRequest
from tests.accounts.test_hardening import staff_client
from tests.factories import owner_of
from tests.refunds.conftest import MONDAY

pytestmark = pytest.mark.django_db
DAY_ONE = MONDAY + timedelta(days=1)


def ask(account, lines, *, now=DAY_ONE, payout="original", **kwargs):
    kwargs.setdefault("reason", "no_longer_needed")
    return services.refund_request_submit(
        actor=owner_of(account),
        account=account,
        line_ids=[line.pk for line in lines],
        payout_method=payout,
        now=now,
        **kwargs,
    )


def approve_all(request, reviewer, *, now=DAY_ONE, amounts=None):
    for line in request.lines.order_by("pk"):
        amount = (amounts or {}).get(line.order_line_id)
        services.refund_line_decide(actor=reviewer, line=line, approve=True, amount=amount, now=now)
    services.refund_request_decide(actor=reviewer, request=request, now=now)
    request.refresh_from_db()
    return request


def pay_manual(request, reviewer, reference="WIRE-BACK", now=DAY_ONE):
    for payout in request.payouts.filter(method="manual", status="pending"):
        services.refund_payout_record_manual(
            actor=reviewer, payout=payout, reference=reference, now=now
        )
    request.refresh_from_db()
    return request


def money_back(line) -> Decimal:
    return sum((row.amount for row in LineRefund.objects.filter(line=line)), Decimal(0))


@pytest.fixture
def reviewer(billing_staff):
    return billing_staff


def test_a_refunded_credit_pack_cannot_be_refunded_again(paid_order, reviewer, client):
    """The issue's walk-through: 100.00 came back once, never 200.00."""
    account, order = paid_order(items=("credits",))
    pack = order.lines.get()
    first = pay_manual(approve_all(ask(account, [pack]), reviewer), reviewer)
    assert first.state == "paid"
    pack.refresh_from_db()
    assert pack.refunded == Decimal("100.00") == money_back(pack)
    assert Payment.objects.get(order=order).refunded == Decimal("100.00")
    # The pack's unused units went with the money (acelle §2.1 refunds the whole pack).
    assert pack.units_left == 0
    assert [c.left for c in billing_selectors.credits_left(account=account)] == [0]
    with pytest.raises(PortalError, match="Only 0 Credits credits are left"):
        billing_services.credits_use(
            actor=owner_of(account), account=account, product=pack.product, units=1, reference="x"
        )

    with pytest.raises(PortalError) as refused:
        ask(account, [pack], now=DAY_ONE + timedelta(days=1))
    assert refused.value.field == "lines"
    assert refused.value.message == (
        f"“{pack.description}” has nothing left to refund: Refunded 100.00 USD on "
        f"3 March 2026, {first.number}."
    )
    # The engine is told too: a quote says it was refunded before.
    decision = services.decisions_for(account=account, lines=[pack], on=DAY_ONE.date())[pack.pk]
    assert (decision.outcome, decision.amount) == ("none", Decimal("0.00"))
    assert "Already refunded: 100.00 USD of the 100.00 USD paid" in decision.explanation

    # The Billing page shows the refund where the purchase is, and offers nothing more.
    client.force_login(owner_of(account))
    page = client.get(reverse("billing_invoices")).content.decode()
    assert f"Refunded 100.00 USD on 3 March 2026, {first.number}" in page
    assert "Refundable today" not in page
    assert reverse("refund_request_new", args=[order.pk]) not in page
    assert "$100.00 given back" in page  # on the payment


def test_a_unit_rate_refund_takes_the_unused_units_and_leaves_nothing_to_ask(paid_order, reviewer):
    account, order = paid_order(items=("credits",))
    pack = order.lines.get()
    billing_services.credits_use(
        actor=owner_of(account), account=account, product=pack.product, units=360, reference="r1"
    )
    # Day 8: past §2.1's 7 days, inside §2.2's 30: the 640 unused units at unit rate.
    later = MONDAY + timedelta(days=8)
    request = ask(account, [pack], now=later)
    line = request.lines.get()
    assert (line.engine_outcome, line.engine_amount) == ("refund", Decimal("64.00"))
    pay_manual(approve_all(request, reviewer, now=later), reviewer, now=later)
    pack.refresh_from_db()
    assert (pack.refunded, pack.units_refunded, pack.units_left) == (Decimal("64.00"), 640, 0)

    # 36.00 of the line was never refunded, so it can be asked about, but the policy
    # leaves nothing: the unit rate of the unused units (64.00) came back already.
    again = ask(account, [pack], now=later + timedelta(days=1))
    line = again.lines.get()
    assert (line.engine_outcome, line.engine_amount) == ("none", Decimal("0.00"))
    with pytest.raises(PortalError, match="At most"):
        services.refund_line_decide(actor=reviewer, line=line, approve=True, amount="1.00")


def test_staff_approve_at_most_what_is_left_and_the_review_page_says_what_came_back(
    paid_order, reviewer, client
):
    account, order = paid_order(items=("credits",))
    pack = order.lines.get()
    # Approve 60 of the 100 now: 40.00 is left of the purchase.
    first = pay_manual(
        approve_all(ask(account, [pack]), reviewer, amounts={pack.pk: "60.00"}), reviewer
    )
    second = ask(account, [pack], now=DAY_ONE + timedelta(days=1))
    line = second.lines.get()
    assert (line.engine_outcome, line.engine_amount) == ("refund", Decimal("40.00"))
    assert "60.00 USD is left" not in line.explanation and "40.00 USD is left" in line.explanation
    with pytest.raises(PortalError, match=r"At most 40\.00 USD can be approved"):
        services.refund_line_decide(actor=reviewer, line=line, approve=True, amount="40.01")

    staff_client(client, group="Billing reviewer")
    page = client.get(reverse("admin:refunds_refundrequest_change", args=[second.pk]))
    text = page.content.decode()
    assert f"60.00 back to the payment by {first.number}, 3 Mar 2026" in text
    assert "40.00 left to refund" in text


def test_two_open_requests_for_one_purchase_pay_out_at_most_the_purchase(paid_order, reviewer):
    """The open-request guard keeps a second request from being filed; should one exist
    (filed before the guard, or made by hand), deciding both still pays once."""
    account, order = paid_order(items=("credits",))
    pack = order.lines.get()
    first = ask(account, [pack], payout="credit")
    second = RefundRequest.objects.get(pk=first.pk)
    second.pk, second.number = None, "RR-2026-999999"
    second.save()
    copy = RefundLine.objects.get(request=first)
    copy.pk, copy.request = None, second
    copy.save()
    for request in (first, second):
        services.refund_line_decide(actor=reviewer, line=request.lines.get(), approve=True)
    services.refund_request_decide(actor=reviewer, request=first)
    with pytest.raises(PortalError) as refused:
        services.refund_request_decide(actor=reviewer, request=second)
    assert "has 0.00 USD left to refund" in refused.value.message
    assert first.number in refused.value.message
    pack.refresh_from_db()
    assert pack.refunded == Decimal("100.00")
    credited = LedgerEntry.objects.filter(account=account, kind="refund_credit")
    assert [entry.amount for entry in credited] == [Decimal("100.00")]


def test_the_card_gets_its_part_and_credit_the_rest_line_by_line(paid_order, reviewer):
    account, _ = paid_order(items=("plugin",))
    billing_services.ledger_adjust(
        actor=reviewer, account=account, amount=Money(Decimal("100"), "USD"), reason="promo"
    )
    account, order = paid_order(account=account, items=("credits", "plugin"))
    assert order.credit_applied == Decimal("100.00")  # the bank paid the other 49.00
    credits, plugin = order.lines.order_by("pk")
    request = pay_manual(approve_all(ask(account, [credits, plugin]), reviewer), reviewer)
    assert request.state == "paid"
    payment = Payment.objects.get(order=order)
    assert payment.refunded == Decimal("49.00") == payment.amount
    rows = {(r.line_id, r.method): r.amount for r in LineRefund.objects.filter(line__order=order)}
    assert rows == {
        (credits.pk, "original"): Decimal("49.00"),
        (credits.pk, "credit"): Decimal("51.00"),
        (plugin.pk, "credit"): Decimal("49.00"),
    }
    assert LedgerEntry.objects.get(kind="refund_credit").amount == Decimal("100.00")
    assert Licence.objects.get(line=plugin).status == "revoked"


def test_the_database_refuses_more_back_than_was_paid(paid_order):
    _, order = paid_order(items=("credits",))
    line = order.lines.get()
    payment = Payment.objects.get(order=order)
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderLine.objects.filter(pk=line.pk).update(refunded=F("amount") + Decimal("0.01"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(refunded=F("amount") + 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderLine.objects.filter(pk=line.pk).update(units_refunded=F("units") + 1)


def test_billing_records_a_refund_once_per_key_and_never_beyond_the_line(paid_order, reviewer):
    account, order = paid_order(items=("credits",))
    line = order.lines.get()
    payment = Payment.objects.get(order=order)
    record = dict(
        actor=reviewer,
        account=account,
        method="original",
        payment=payment,
        reference="RR-TEST",
    )
    billing_services.refund_record(**record, amounts={line.pk: Decimal("30")}, key="k1")
    billing_services.refund_record(**record, amounts={line.pk: Decimal("30")}, key="k1")
    line.refresh_from_db()
    payment.refresh_from_db()
    assert line.refunded == Decimal("30.00") == payment.refunded
    with pytest.raises(PortalError, match=r"has 70\.00 USD left to refund: 70\.01 USD"):
        billing_services.refund_record(**record, amounts={line.pk: Decimal("70.01")}, key="k2")
    other, other_order = paid_order()
    with pytest.raises(PortalError, match="lines of one order"):
        billing_services.refund_record(
            **{**record, "account": other}, amounts={line.pk: Decimal("1")}, key="k3"
        )
    assert other_order.pk != order.pk


def test_a_quota_addon_refund_deactivates_it(paid_order, reviewer, settings):
    settings.REFUND_POLICY = "onecloud"  # silent on quota add-ons: staff decide (uncovered)
    account, order = paid_order(items=("storage",))
    line = order.lines.get()
    assert list(billing_selectors.quota_addons_active(account=account)) == [line]
    request = ask(account, [line], reason="not_as_advertised")
    assert request.lines.get().engine_outcome == "review"
    pay_manual(approve_all(request, reviewer), reviewer)
    line.refresh_from_db()
    assert line.taken_back_at is not None
    assert list(billing_selectors.quota_addons_active(account=account)) == []


def test_a_premium_feature_refund_ends_the_feature(paid_order, reviewer, billing_staff):
    account, _ = paid_order(items=("plugin",))
    feature = Price.objects.create(
        product=Product.objects.create(code="wa", name="WhatsApp API", kind="premium_feature"),
        currency="USD",
        amount=Decimal("30"),
        interval="month",
    )
    order = billing_services.purchase_place(
        actor=owner_of(account), account=account, items=[{"price": feature.pk}], now=MONDAY
    )
    billing_services.payment_record_manual(
        actor=billing_staff, order=order, reference="B2", now=MONDAY
    )
    line = order.lines.get()
    assert line.subscription.status == "active"
    request = ask(account, [line], reason="not_as_advertised")
    # acelle does not speak of premium features: staff decide (uncovered)
    assert request.lines.get().engine_outcome == "review"
    pay_manual(approve_all(request, reviewer), reviewer)
    assert Subscription.objects.get(pk=line.subscription_id).status == "cancelled"
    assert line.subscription not in billing_selectors.addon_list(account=account)


def test_the_api_shows_what_came_back_on_lines_orders_and_payments(
    paid_order, reviewer, api_client
):
    account, order = paid_order(items=("credits", "plugin"))
    credits, _ = order.lines.order_by("pk")
    request = pay_manual(approve_all(ask(account, [credits]), reviewer), reviewer)
    api_client.force_authenticate(owner_of(account))
    body = api_client.get(f"/api/v1/accounts/{account.pk}/orders/").json()
    shown = body["results"][0]
    assert shown["refunded"] == "100.00"
    line = next(item for item in shown["lines"] if item["id"] == credits.pk)
    assert line["refunded"] == "100.00" and line["units_refunded"] == 1000
    assert [(r["amount"], r["method"], r["reference"]) for r in line["refunds"]] == [
        ("100.00", "original", request.number)
    ]
    payments = api_client.get(f"/api/v1/accounts/{account.pk}/payments/").json()["results"]
    assert payments[0]["refunded"] == "100.00"


def test_refunds_paid_before_billing_recorded_them_are_backfilled(paid_order, reviewer):
    """refunds/migrations/0005: a refund paid out before this change gets its records."""
    import importlib

    from django.apps import apps

    backfill = importlib.import_module("refunds.migrations.0005_backfill_line_refunds").backfill
    account, order = paid_order(items=("credits", "plugin"))
    credits, plugin = order.lines.order_by("pk")
    request = approve_all(ask(account, [credits, plugin], payout="credit"), reviewer)
    assert request.state == "credited"
    # As the database was before: the payouts paid, nothing on the lines.
    LineRefund.objects.filter(line__order=order).delete()
    OrderLine.objects.filter(order=order).update(refunded=0)
    request.payouts.update(allocation={})
    backfill(apps, None)
    credits.refresh_from_db()
    plugin.refresh_from_db()
    assert (credits.refunded, plugin.refunded) == (Decimal("100.00"), Decimal("49.00"))
    allocation = request.payouts.get().allocation
    assert {int(k): Decimal(v) for k, v in allocation.items()} == {credits.pk: 100, plugin.pk: 49}
    with pytest.raises(PortalError, match="nothing left to refund"):
        ask(account, [credits])


def test_the_request_page_of_a_refunded_order_says_so_and_offers_nothing(
    paid_order, reviewer, client
):
    account, order = paid_order(items=("credits",))
    first = pay_manual(approve_all(ask(account, order.lines.all()), reviewer), reviewer)
    client.force_login(owner_of(account))
    page = client.get(reverse("refund_request_new", args=[order.pk])).content.decode()
    assert 'data-testid="nothing-left"' in page and 'data-testid="refund-form"' not in page
    assert f"Refunded 100.00 USD on 3 March 2026, {first.number}" in page
    posted = client.post(
        reverse("refund_request_new", args=[order.pk]),
        {
            "account_id": account.pk,
            "lines": [order.lines.get().pk],
            "reason": "no_longer_needed",
            "payout_method": "credit",
            "action": "send",
        },
    )
    assert posted.status_code == 400
    assert RefundRequest.objects.count() == 1


def test_billing_reviewers_read_every_refund_record_in_the_console(paid_order, reviewer, client):
    account, order = paid_order(items=("credits",))
    first = pay_manual(approve_all(ask(account, order.lines.all()), reviewer), reviewer)
    staff_client(client, group="Billing reviewer")
    listing = client.get(reverse("admin:billing_linerefund_changelist"))
    assert listing.status_code == 200 and first.number in listing.content.decode()
    record = LineRefund.objects.get()
    page = client.get(reverse("admin:billing_linerefund_change", args=[record.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content  # read only
    staff_client(client, group="Support agent")
    assert client.get(reverse("admin:billing_linerefund_changelist")).status_code == 403
