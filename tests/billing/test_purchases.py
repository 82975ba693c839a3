"""Catalogue purchases: several kinds in one order and one payment, delivered at once;
credit packs consumed oldest first; usage charged per month."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from accounts.errors import PortalError
from accounts.models import AuditEvent
from billing import selectors as billing_selectors
from billing import services
from billing import services as billing_services
from billing.models import (
    CreditUse,
    LedgerEntry,
    Licence,
    Order,
    OrderLine,
    Payment,
    Price,
    Product,
    Subscription,
    UsageRecord,
)
from tests.billing.helpers import NOW, UTC, usd
from tests.factories import owner_of

pytestmark = pytest.mark.django_db


def _product(code, kind, amount, *, interval="one_off", scheme="flat", units=None, **extra):
    product = Product.objects.create(code=code, name=code.title(), kind=kind, units=units, **extra)
    return Price.objects.create(
        product=product, currency="USD", amount=Decimal(amount), scheme=scheme, interval=interval
    )


@pytest.fixture
def shop():
    return {
        "whatsapp": _product("whatsapp", "premium_feature", "15", interval="month"),
        "storage": _product("storage", "quota_addon", "20"),
        "credits": _product("credits", "credit_pack", "100", units=100_000),
        "plugin": _product("plugin", "plugin", "49"),
        "migration": _product("migration", "service", "450"),
        "sms": _product("sms", "usage", "0.04", interval="month"),
    }


def _buy(account, items, *, now=NOW, expected=None):
    return billing_services.purchase_place(
        actor=owner_of(account), account=account, items=items, expected_total=expected, now=now
    )


def test_one_order_of_several_kinds_paid_once_delivers_everything(
    account, shop, billing_staff, django_capture_on_commit_callbacks
):
    items = [
        {"price": shop["whatsapp"].pk, "quantity": 1},
        {"price": shop["storage"].pk, "quantity": 2},
        {"price": shop["credits"].pk, "quantity": 1},
        {"price": shop["plugin"].pk, "quantity": 3},
        {"price": shop["migration"].pk, "quantity": 1},
    ]
    quote = billing_services.purchase_quote(account=account, items=items, today=date(2026, 3, 10))
    assert quote.total == usd("15") + usd("40") + usd("100") + usd("147") + usd("450")
    order = _buy(account, items, expected=quote.total)
    assert order.status == Order.Status.AWAITING_PAYMENT and order.lines.count() == 5
    assert Payment.objects.filter(order=order).count() == 1  # one payment for all lines
    feature = Subscription.objects.get(account=account, price=shop["whatsapp"])
    assert feature.status == Subscription.Status.PENDING

    with django_capture_on_commit_callbacks(execute=True):
        services.payment_record_manual(
            actor=billing_staff, order=order, reference="BANK-1", now=NOW
        )

    lines = {line.kind: line for line in order.lines.all()}
    feature.refresh_from_db()
    assert feature.status == Subscription.Status.ACTIVE
    assert (feature.current_period_start, feature.current_period_end) == (
        date(2026, 3, 10),
        date(2026, 4, 10),
    )
    assert lines["quota_addon"].activated_at == NOW and lines["quota_addon"].delivered_at == NOW
    assert lines["credit_pack"].units == 100_000 and lines["credit_pack"].delivered_at == NOW
    licence = Licence.objects.get(line=lines["plugin"])
    assert licence.users == 3 and lines["plugin"].delivery == OrderLine.Delivery.KEY_SENT
    assert lines["service"].delivered_at is None  # a service is delivered when accepted
    # The key went out by mail, once, to the buyer.
    key_mails = [m for m in mail.outbox if "licence key" in m.subject]
    assert len(key_mails) == 1 and key_mails[0].to == [owner_of(account).email]
    from billing.selectors import licence_key

    assert licence_key(licence) in key_mails[0].body
    # The premium feature is not the plan: seats paid still follow the plan.
    account.refresh_from_db()
    assert account.seats_paid == 3


def test_credit_pays_first_and_an_order_covered_in_full_is_delivered_at_once(
    account, shop, billing_staff
):
    owner = owner_of(account)
    services.ledger_adjust(
        actor=billing_staff, account=account, amount=usd("150.00"), reason="goodwill"
    )
    order = _buy(account, [{"price": shop["credits"].pk, "quantity": 1}])
    assert order.status == Order.Status.PAID and order.credit_applied == Decimal("100")
    assert not Payment.objects.filter(order=order).exists()
    assert billing_selectors.credits_left(account=account)[0].left == 100_000
    assert owner  # the owner placed it


def test_a_confirmation_at_another_total_than_previewed_is_refused(account, shop):
    with pytest.raises(PortalError) as exc:
        _buy(account, [{"price": shop["plugin"].pk, "quantity": 2}], expected=usd("49.00"))
    assert exc.value.field == "items" and "98.00 USD" in exc.value.message
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "at least one item"),
        ("nonsense", "at least one item"),
        ([{"price": "abc"}], "whole number"),
        ([{"price": 999999, "quantity": 1}], "not for sale"),
        ([{"price": "SELF", "quantity": 0}], "between 1 and"),
        ([{"price": "SELF", "quantity": 1}, {"price": "SELF", "quantity": 2}], "once"),
        ([{"price": "SELF", "quantity": True}], "whole number"),
    ],
)
def test_bad_items_are_refused_with_the_reason(account, shop, items, message):
    if isinstance(items, list):
        items = [
            {**item, "price": shop["plugin"].pk if item["price"] == "SELF" else item["price"]}
            for item in items
        ]
    with pytest.raises(PortalError) as exc:
        billing_services.purchase_quote(account=account, items=items, today=date(2026, 3, 10))
    assert message in exc.value.message and exc.value.field == "items"


def test_a_recurring_add_on_is_bought_once_and_renews_without_touching_the_licence_screen(
    account, shop, billing_staff
):
    order = _buy(account, [{"price": shop["whatsapp"].pk, "quantity": 1}])
    services.payment_record_manual(actor=billing_staff, order=order, reference="B", now=NOW)
    with pytest.raises(PortalError, match="already have"):
        _buy(account, [{"price": shop["whatsapp"].pk, "quantity": 1}])
    feature = Subscription.objects.get(price=shop["whatsapp"])
    # Its renewal goes unpaid: the add-on lapses, the account stays usable.
    services.subscription_renew(subscription=feature, now=datetime(2026, 4, 10, 12, tzinfo=UTC))
    feature.refresh_from_db()
    account.refresh_from_db()
    assert feature.status == Subscription.Status.LAPSED
    assert account.status == "active"
    renewal = Order.objects.filter(lines__subscription=feature).latest("pk")
    assert renewal.lines.get().kind == "premium_feature"


def test_credits_are_taken_from_the_oldest_pack_first_once_per_reference(
    account, shop, billing_staff
):
    first = _buy(account, [{"price": shop["credits"].pk, "quantity": 1}], now=NOW)
    services.payment_record_manual(actor=billing_staff, order=first, reference="B1", now=NOW)
    later = datetime(2026, 3, 12, 12, tzinfo=UTC)
    second = _buy(account, [{"price": shop["credits"].pk, "quantity": 1}], now=later)
    services.payment_record_manual(actor=billing_staff, order=second, reference="B2", now=later)
    product = shop["credits"].product
    owner = owner_of(account)

    billing_services.credits_use(
        actor=owner, account=account, product=product, units=150_000, reference="batch-1"
    )
    old, new = (line for line in OrderLine.objects.filter(kind="credit_pack").order_by("pk"))
    assert (old.units_used, new.units_used) == (100_000, 50_000)
    # A retry with the same reference changes nothing.
    billing_services.credits_use(
        actor=owner, account=account, product=product, units=150_000, reference="batch-1"
    )
    assert CreditUse.objects.count() == 1
    with pytest.raises(PortalError, match="already used"):
        billing_services.credits_use(
            actor=owner, account=account, product=product, units=5, reference="batch-1"
        )
    with pytest.raises(PortalError, match="Only 50,000"):
        billing_services.credits_use(
            actor=owner, account=account, product=product, units=50_001, reference="batch-2"
        )
    balance = billing_selectors.credits_left(account=account)[0]
    assert (balance.units, balance.used, balance.left) == (200_000, 150_000, 50_000)


def test_unpaid_credit_packs_cannot_be_used(account, shop):
    _buy(account, [{"price": shop["credits"].pk, "quantity": 1}])
    with pytest.raises(PortalError, match="Only 0"):
        billing_services.credits_use(
            actor=owner_of(account),
            account=account,
            product=shop["credits"].product,
            units=1,
            reference="r",
        )


def test_usage_is_recorded_once_per_reference_and_charged_after_the_month(account, shop):
    product = shop["sms"].product
    owner = owner_of(account)
    march = datetime(2026, 3, 20, 15, tzinfo=UTC)
    billing_services.usage_record(
        actor=owner, account=account, product=product, quantity=1200, reference="a", now=march
    )
    billing_services.usage_record(
        actor=owner, account=account, product=product, quantity=1200, reference="a", now=march
    )
    billing_services.usage_record(
        actor=owner, account=account, product=product, quantity=301, reference="b", now=march
    )
    assert UsageRecord.objects.count() == 2
    summary = billing_selectors.usage_summary(account=account, today=date(2026, 3, 20))
    assert summary[0].quantity == 1501 and summary[0].estimate == usd("60.04")
    assert billing_services.usage_bill(account=account, now=march) is None  # March is not over

    # 1 April 01:00 UTC is still 31 March in New York: not yet.
    assert billing_services.usage_bill_due(now=datetime(2026, 4, 1, 1, tzinfo=UTC)) == 0
    assert billing_services.usage_bill_due(now=datetime(2026, 4, 1, 12, tzinfo=UTC)) == 1
    order = Order.objects.get(lines__kind="usage")
    line = order.lines.get()
    assert (line.quantity, line.amount, line.period_start, line.period_end) == (
        1501,
        Decimal("60.04"),
        date(2026, 3, 1),
        date(2026, 4, 1),
    )
    assert not UsageRecord.objects.filter(line__isnull=True).exists()
    # Billing again bills nothing twice.
    assert billing_services.usage_bill_due(now=datetime(2026, 4, 2, 12, tzinfo=UTC)) == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": "many"}, "quantity"),
        ({"reference": ""}, "reference"),
        ({"used_on": date(2026, 3, 21)}, "used_on"),  # a day still to come
        ({"used_on": date(2026, 2, 28)}, "used_on"),  # a month already billed
    ],
)
def test_bad_usage_is_refused_naming_the_input(account, shop, kwargs, field):
    arguments = {"quantity": 5, "reference": "r1", **kwargs}
    with pytest.raises(PortalError) as exc:
        billing_services.usage_record(
            actor=None,
            account=account,
            product=shop["sms"].product,
            now=datetime(2026, 3, 20, 15, tzinfo=UTC),
            **arguments,
        )
    assert exc.value.field == field


def test_a_service_is_delivered_when_staff_record_its_acceptance(account, shop, billing_staff):
    order = _buy(account, [{"price": shop["migration"].pk, "quantity": 1}])
    line = order.lines.get()
    with pytest.raises(PortalError, match="not paid"):
        billing_services.service_mark_accepted(actor=billing_staff, line=line)
    services.payment_record_manual(actor=billing_staff, order=order, reference="B", now=NOW)
    line = billing_services.service_mark_accepted(actor=billing_staff, line=line, now=NOW)
    assert line.delivery == "accepted" and line.delivered_at == NOW
    assert AuditEvent.objects.filter(action="order_line.accepted").count() == 1


def test_cancelling_an_unpaid_purchase_returns_its_credit_and_never_starts_the_add_on(
    account, shop, billing_staff
):
    services.ledger_adjust(
        actor=billing_staff, account=account, amount=usd("5.00"), reason="goodwill"
    )
    order = _buy(account, [{"price": shop["whatsapp"].pk, "quantity": 1}])
    assert order.credit_applied == Decimal("5")
    services.order_cancel(actor=owner_of(account), order=order)
    assert Subscription.objects.get(price=shop["whatsapp"]).status == "cancelled"
    assert LedgerEntry.objects.filter(account=account).order_by("-sequence")[0].balance_after == 5


def test_the_buy_page_previews_then_confirms(client, account, shop):
    client.force_login(owner_of(account))
    url = reverse("billing_buy")
    page = client.get(url)
    assert page.status_code == 200 and "Credits" in page.text
    field = f"qty_{shop['plugin'].pk}"
    preview = client.post(url, {"account_id": account.pk, field: "2", "action": "preview"})
    assert preview.status_code == 200 and "$98.00" in preview.text
    assert 'data-testid="confirm">Place the order</button>' in preview.text
    done = client.post(
        url, {"account_id": account.pk, field: "2", "action": "confirm", "expected": "98.00"}
    )
    assert done.status_code == 302
    assert Order.objects.get().lines.get().quantity == 2
    bad = client.post(url, {"account_id": account.pk, field: "-4", "action": "preview"})
    assert bad.status_code == 400 and "whole number" in bad.text
    billing = client.get(reverse("billing_invoices"))
    assert "Plugin, licence for 2 user(s)" in billing.text


def test_members_cannot_buy(client, account, shop):
    from tests.factories import MembershipFactory

    member = MembershipFactory(account=account, role="member").user
    client.force_login(member)
    assert client.get(reverse("billing_buy")).status_code == 403
    with pytest.raises(Exception, match="Only owners and billing admins"):
        billing_services.purchase_place(
            actor=member, account=account, items=[{"price": shop["plugin"].pk, "quantity": 1}]
        )


def test_usage_bills_cannot_be_cancelled(account, shop):
    billing_services.usage_record(
        actor=None,
        account=account,
        product=shop["sms"].product,
        quantity=10,
        reference="r",
        now=datetime(2026, 3, 20, 15, tzinfo=UTC),
    )
    order = billing_services.usage_bill(account=account, now=datetime(2026, 4, 2, 15, tzinfo=UTC))
    with pytest.raises(PortalError, match="cannot be cancelled"):
        services.order_cancel(actor=owner_of(account), order=order)
    order.refresh_from_db()
    assert order.status == "awaiting_payment"


@pytest.mark.parametrize(
    ("quantity", "message"), [("²", "whole number"), ("٣", "whole number"), (9000, "split it")]
)
def test_odd_quantities_are_refused_not_crashed(account, shop, quantity, message):
    Product.objects.filter(pk=shop["credits"].product_id).update(units=1_000_000)
    with pytest.raises(PortalError, match=message):
        billing_services.purchase_quote(
            account=account,
            items=[{"price": shop["credits"].pk, "quantity": quantity}],
            today=date(2026, 3, 10),
        )


def test_one_add_on_once_per_order(account, shop):
    yearly = Price.objects.create(
        product=shop["whatsapp"].product, currency="USD", amount=Decimal("150"), interval="year"
    )
    with pytest.raises(PortalError, match="already have"):
        billing_services.purchase_quote(
            account=account,
            items=[{"price": shop["whatsapp"].pk}, {"price": yearly.pk}],
            today=date(2026, 3, 10),
        )


def test_a_confirmation_without_the_previewed_total_places_nothing(client, account, shop):
    client.force_login(owner_of(account))
    response = client.post(
        reverse("billing_buy"),
        {"account_id": account.pk, f"qty_{shop['plugin'].pk}": "1", "action": "confirm"},
    )
    assert response.status_code == 400 and "Preview the order first" in response.text
    assert not Order.objects.exists()
