"""The Billing pages: an overview, a sub-page per concern, a preview whose amounts are
the order's, the order page that says how to pay, and confirmations before cancelling."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from billing import services
from billing.models import Order, Price, Product, Subscription, TaxRate
from tests.billing.helpers import NOW, usd
from tests.billing.test_licences import _buy_licences, at, catalogue, onprem  # noqa: F401 (fixtures)
from tests.factories import AccountFactory, MembershipFactory, owner_of

pytestmark = pytest.mark.django_db

SUBPAGES = [
    "settings_billing",
    "billing_plan",
    "billing_addons",
    "billing_invoices",
    "billing_credits",
    "billing_refunds",
]


@pytest.fixture
def taxed(account):
    """Billed to Germany at 19% VAT, with 50.00 of credit on the account."""
    TaxRate.objects.create(
        country="DE", name="VAT", rate=Decimal("19"), valid_from=date(2021, 1, 1)
    )
    services.billing_details_update(
        actor=owner_of(account), account=account, data={"country": "DE"}
    )
    services.ledger_credit(
        actor=None, account=account, amount=usd("50"), kind="seat_credit", description="earlier"
    )
    return account


@pytest.mark.parametrize("name", SUBPAGES)
def test_each_sub_page_opens_for_owners_and_billing_admins_only(client, account, name):
    url = reverse(name)
    client.force_login(owner_of(account))
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    # The sub-navigation links every sub-page and marks this one.
    for other in SUBPAGES:
        assert f'href="{reverse(other)}"' in body
    assert f'href="{url}" class="active" aria-current="page"' in body
    admin = MembershipFactory(account=account, role="billing_admin")
    client.force_login(admin.user)
    assert client.get(url).status_code == 200
    member = MembershipFactory(account=account, role="member")
    client.force_login(member.user)
    assert client.get(url).status_code == 403


def test_an_order_of_another_account_is_not_found(client, account, subscription, enterprise):
    _, _, order = services.subscription_change_plan(
        actor=owner_of(account), subscription=subscription, price=enterprise, now=NOW
    )
    client.force_login(owner_of(account))
    assert client.get(reverse("billing_order", args=[order.pk])).status_code == 200
    client.force_login(owner_of(AccountFactory()))
    assert client.get(reverse("billing_order", args=[order.pk])).status_code == 404
    assert client.get(reverse("order_cancel", args=[order.pk])).status_code == 404


def test_the_overview_sums_up_plan_next_charge_credit_and_unpaid_orders(
    client, taxed, subscription, enterprise
):
    with time_machine.travel(NOW, tick=False):
        services.ledger_apply_to_charge(account=taxed, charge=usd("20"), reference="x")
        _, _, order = services.subscription_change_plan(
            actor=owner_of(taxed), subscription=subscription, price=enterprise, now=NOW
        )
        client.force_login(owner_of(taxed))
        body = client.get(reverse("settings_billing")).content.decode()
    assert "<strong>Professional</strong> · Active" in body
    # 3 seats at 31.00 renew on 1 April, with 19% VAT: 93.00 + 17.67.
    assert "<strong>$110.67</strong> on April 1, 2026" in body and "Tax included" in body
    # 50 credit, 20 used before, the upgrade's order took the other 30.
    assert 'data-testid="summary-credit"' in body and "<strong>$0.00</strong>" in body
    assert f'<a href="/settings/billing/orders/{order.pk}/">{order.number}</a>' in body
    assert f"{order.number}</a>: $48.54 due" in body


def test_the_preview_shows_what_the_order_then_charges_credit_and_tax_included(
    client, taxed, subscription, enterprise
):
    client.force_login(owner_of(taxed))
    with time_machine.travel(NOW, tick=False):
        preview = client.post(
            reverse("billing_plan_change"), {"account_id": taxed.pk, "price": enterprise.pk}
        )
        body = preview.content.decode()
        totals = preview.context["totals"]
        # 66.00 for the 22 days left, 12.54 of VAT, 50.00 of it paid by the credit.
        assert (totals.net, totals.tax, totals.total) == (usd("66"), usd("12.54"), usd("78.54"))
        assert (totals.credit, totals.due) == (usd("50"), usd("28.54"))
        for testid, shown in [
            ("preview-net", "$66.00"),
            ("preview-tax", "$12.54"),
            ("preview-total", "$78.54"),
            ("preview-credit", "\u2212$50.00"),
            ("preview-due", "$28.54"),
        ]:
            assert f'data-testid="{testid}">{shown}</td>' in body
        assert ">VAT 19%</th>" in body
        done = client.post(
            reverse("billing_plan_change"),
            {
                "account_id": taxed.pk,
                "price": enterprise.pk,
                "expected": "66.00",
                "action": "confirm",
            },
        )
    order = Order.objects.get()
    assert done.status_code == 302 and done["Location"] == reverse("billing_order", args=[order.pk])
    assert order.total == totals.total.amount
    assert sum(line.tax_amount for line in order.lines.all()) == totals.tax.amount
    assert order.credit_applied == totals.credit.amount
    assert order.amount_due == totals.due.amount


def test_the_seat_preview_equals_the_seat_order(taxed, subscription):
    with time_machine.travel(NOW, tick=False):
        quote, totals = services.subscription_seat_preview(
            subscription=subscription, quantity=5, today=date(2026, 3, 10)
        )
        _, _, order = services.subscription_change_seats(
            actor=owner_of(taxed),
            subscription=subscription,
            quantity=5,
            expected_amount=quote.amount,
            now=NOW,
        )
    assert totals.total == quote.total and totals.credit == usd("50")
    assert (order.total, order.credit_applied, order.amount_due) == (
        totals.total.amount,
        totals.credit.amount,
        totals.due.amount,
    )


def test_the_manual_gateway_places_the_order_then_gives_the_bank_details(
    client, account, subscription, enterprise, settings
):
    settings.BILLING_GATEWAY = "manual"
    settings.VENDOR_BANK_DETAILS = "Vendor Bank, IBAN DE00 1234 5678 9012 3456 78, BIC VENDDEFF"
    client.force_login(owner_of(account))
    with time_machine.travel(NOW, tick=False):
        preview = client.post(
            reverse("billing_plan_change"), {"account_id": account.pk, "price": enterprise.pk}
        ).content.decode()
        assert 'data-testid="confirm">Place the order</button>' in preview
        assert "Confirm and pay" not in preview and "does not take a payment" in preview
        page = client.post(
            reverse("billing_plan_change"),
            {
                "account_id": account.pk,
                "price": enterprise.pk,
                "expected": "66.00",
                "action": "confirm",
            },
            follow=True,
        ).content.decode()
    order = Order.objects.get()
    assert f"Order {order.number} is placed" in page
    assert 'data-testid="bank-transfer"' in page
    assert 'data-testid="bank-details">Vendor Bank, IBAN DE00 1234 5678 9012 3456 78' in page
    assert f'data-testid="transfer-reference"><strong>{order.number}</strong>' in page
    assert 'data-testid="transfer-amount"><strong>$66.00</strong>' in page
    assert "the plan cannot be changed again" in page


def test_with_stripe_the_preview_asks_to_pay_by_card(
    client, account, subscription, enterprise, settings
):
    settings.BILLING_GATEWAY = "stripe"
    client.force_login(owner_of(account))
    with time_machine.travel(NOW, tick=False):
        preview = client.post(
            reverse("billing_plan_change"), {"account_id": account.pk, "price": enterprise.pk}
        ).content.decode()
    assert 'data-testid="confirm">Confirm and pay $66.00</button>' in preview
    assert "To pay now" in preview and "bank transfer" not in preview


def test_credit_that_covers_it_all_places_a_paid_order(client, account, subscription, enterprise):
    services.ledger_credit(
        actor=None, account=account, amount=usd("500"), kind="seat_credit", description="x"
    )
    client.force_login(owner_of(account))
    with time_machine.travel(NOW, tick=False):
        preview = client.post(
            reverse("billing_seat_change"), {"account_id": account.pk, "quantity": 4}
        ).content.decode()
        assert 'data-testid="preview-due">$0.00</td>' in preview
        assert 'data-testid="confirm">Place the order</button>' in preview
        done = client.post(
            reverse("billing_seat_change"),
            {"account_id": account.pk, "quantity": 4, "expected": "22.00", "action": "confirm"},
        )
    assert done["Location"] == reverse("billing_plan")
    assert Order.objects.get().status == "paid" and Subscription.objects.get().quantity == 4


def test_cancelling_the_plan_asks_first_and_says_when_access_ends(client, account, subscription):
    client.force_login(owner_of(account))
    plan = client.get(reverse("billing_plan")).content.decode()
    assert f'href="{reverse("subscription_cancel")}" data-testid="cancel-plan"' in plan
    page = client.get(reverse("subscription_cancel")).content.decode()
    assert 'data-testid="access-ends">March 31, 2026</strong>' in page
    assert "Nothing more is charged, and the time left is not refunded." in page
    subscription.refresh_from_db()
    assert not subscription.cancel_at_period_end  # opening the page changes nothing
    done = client.post(
        reverse("subscription_cancel"), {"account_id": account.pk, "cancel": "1"}, follow=True
    ).content.decode()
    assert "you keep access through March 31, 2026" in done
    assert 'data-testid="access-ends">Cancelled: you keep access through March 31, 2026' in done


def test_cancelling_an_order_asks_first(client, account, subscription, enterprise):
    services.ledger_credit(
        actor=None, account=account, amount=usd("10"), kind="seat_credit", description="x"
    )
    _, _, order = services.subscription_change_plan(
        actor=owner_of(account), subscription=subscription, price=enterprise, now=NOW
    )
    client.force_login(owner_of(account))
    page = client.get(reverse("order_cancel", args=[order.pk])).content.decode()
    assert 'data-testid="cancel-confirmation"' in page
    assert "The $10.00 of credit it used comes back on your account at once." in page
    order.refresh_from_db()
    assert order.status == "awaiting_payment"
    client.post(reverse("order_cancel", args=[order.pk]), {"account_id": account.pk})
    order.refresh_from_db()
    assert order.status == "cancelled"


def test_the_plan_selector_shows_the_current_plan(client, account, subscription, enterprise):
    # On the higher plan, with a cheaper one on sale: the selector starts on Enterprise.
    Subscription.objects.filter(pk=subscription.pk).update(price=enterprise)
    client.force_login(owner_of(account))
    form = client.get(reverse("billing_plan")).context["plan_form"]
    assert form["price"].value() == enterprise.pk
    html = str(form["price"])
    assert f'<option value="{enterprise.pk}" selected>Enterprise: $62.00 per seat, monthly' in html
    assert html.count("selected") == 1


def test_the_current_plan_is_shown_even_when_it_is_off_sale(client, account, subscription, plan):
    Price.objects.filter(pk=plan.pk).update(is_active=False)
    client.force_login(owner_of(account))
    html = str(client.get(reverse("billing_plan")).context["plan_form"]["price"])
    assert f'<option value="{plan.pk}" selected>' in html


def test_an_on_premise_account_sees_no_cloud_plan(client, onprem, catalogue, billing_staff):  # noqa: F811
    _buy_licences(onprem, catalogue, 3, date(2026, 3, 10), billing_staff)
    Product.objects.create(code="pro", name="Professional", kind="subscription")
    client.force_login(owner_of(onprem))
    page = client.get(reverse("billing_plan")).content.decode()
    assert "Licences and support (on-premise)" in page and 'data-testid="on-premise"' in page
    assert 'data-testid="start-plan"' not in page and 'data-testid="plan"' not in page
    overview = client.get(reverse("settings_billing")).content.decode()
    assert "On-premise: <strong>3</strong> licensed users." in overview


def test_a_cloud_account_with_a_plugin_sees_no_on_premise_section(
    client, account, subscription, billing_staff
):
    product = Product.objects.create(code="plug", name="Mail plugin", kind="plugin")
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("49"), interval="one_off"
    )
    order = services.purchase_place(
        actor=owner_of(account),
        account=account,
        items=[{"price": price.pk}],
        now=at(date(2026, 3, 10)),
    )
    services.payment_record_manual(actor=billing_staff, order=order, reference="B", now=NOW)
    client.force_login(owner_of(account))
    plan = client.get(reverse("billing_plan")).content.decode()
    assert 'data-testid="plan"' in plan and "on-premise" not in plan.lower()
    addons = client.get(reverse("billing_addons")).content.decode()
    assert "on-premise" not in addons.lower()
    assert 'data-testid="plugin-licences"' in addons and "Mail plugin" in addons


def test_apps_are_listed_apart_from_add_ons(client, account, subscription):
    app = Product.objects.create(code="app", name="Chat app", kind="app_subscription")
    feature = Product.objects.create(code="feat", name="Audit trail", kind="premium_feature")
    for product in (app, feature):
        Subscription.objects.create(
            account=account,
            price=Price.objects.create(
                product=product, currency="USD", amount=Decimal("9"), interval="month"
            ),
            quantity=1,
            current_period_start=date(2026, 3, 1),
            current_period_end=date(2026, 4, 1),
        )
    client.force_login(owner_of(account))
    page = client.get(reverse("billing_addons"))
    assert [a.price.product.name for a in page.context["addons"]] == ["Audit trail"]
    assert [a.price.product.name for a in page.context["apps"]] == ["Chat app"]
    body = page.content.decode()
    addons, apps = body.split("<h3>Marketplace apps</h3>")
    assert "Audit trail" in addons and "Chat app" not in addons
    assert "Chat app" in apps and "Mar 1\u2009\u2013\u200931, 2026" in apps
