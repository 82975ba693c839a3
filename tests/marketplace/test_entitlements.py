"""1CRM terms: the Customer Connection Portal for WordPress works only with Professional or
Enterprise and its own licence; the entitlements API says what an account may use."""

from datetime import date
from decimal import Decimal

import pytest

from accounts.errors import PortalError
from billing import selectors
from billing import services as billing
from billing.models import Licence, Price, Product, Subscription
from tests.factories import AccountFactory, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal():
    product = Product.objects.create(
        code="wordpress-portal",
        name="Customer Connection Portal for WordPress",
        kind="plugin",
        requires_edition="professional",
    )
    return Price.objects.create(
        product=product, currency="USD", amount=Decimal("295"), interval="one_off"
    )


def plan(account, edition):
    product = Product.objects.create(
        code=f"plan-{edition}", name=edition.title(), kind="subscription", edition=edition
    )
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("29"), scheme="per_seat", interval="month"
    )
    return Subscription.objects.create(
        account=account,
        price=price,
        quantity=1,
        current_period_start=date(2026, 3, 1),
        current_period_end=date(2026, 4, 1),
    )


def test_buying_it_is_refused_without_professional_or_enterprise(portal):
    account = AccountFactory()
    with pytest.raises(PortalError, match="Professional or Enterprise") as refused:
        billing.purchase_place(
            actor=owner_of(account), account=account, items=[{"price": portal.pk}]
        )
    assert refused.value.code == "not_entitled"


def test_bought_with_professional_and_listed_in_entitlements(portal, api_client, billing_staff):
    account = AccountFactory()
    plan(account, "professional")
    order = billing.purchase_place(
        actor=owner_of(account), account=account, items=[{"price": portal.pk}]
    )
    billing.payment_record_manual(actor=billing_staff, order=order, reference="W-1")
    api_client.force_authenticate(owner_of(account))
    data = api_client.get(f"/api/v1/accounts/{account.pk}/entitlements/").json()
    assert data["edition"] == "professional"
    assert [p["product"] for p in data["plugins"]] == ["wordpress-portal"]
    licence = Licence.objects.get(account=account)
    key = selectors.licence_key(licence)
    assert billing.licence_activate(key=key).activated_at is not None


def test_a_downgrade_stops_it_says_so_and_ends_it(portal, api_client, billing_staff):
    account = AccountFactory()
    subscription = plan(account, "professional")
    order = billing.purchase_place(
        actor=owner_of(account), account=account, items=[{"price": portal.pk}]
    )
    billing.payment_record_manual(actor=billing_staff, order=order, reference="W-1")
    lost = selectors.entitlements_lost(account, edition="startup")
    assert lost and "Customer Connection Portal for WordPress stops working" in lost[0]
    plan_line = None  # the plan's own line would be refunded: its licence stops too
    assert (
        selectors.entitlements_lost(account, without_lines=[plan_line] if plan_line else []) == []
    )
    Subscription.objects.filter(pk=subscription.pk).update(status="cancelled")  # the plan ended
    api_client.force_authenticate(owner_of(account))
    data = api_client.get(f"/api/v1/accounts/{account.pk}/entitlements/").json()
    assert data["plugins"] == []
    assert data["stopped"][0]["product"] == "wordpress-portal"
    key = selectors.licence_key(Licence.objects.get(account=account))
    with pytest.raises(PortalError, match="Professional or Enterprise"):
        billing.licence_activate(key=key)


def test_entitlements_of_another_account_answer_404(api_client):
    mine, other = AccountFactory(), AccountFactory()
    api_client.force_authenticate(owner_of(mine))
    assert api_client.get(f"/api/v1/accounts/{other.pk}/entitlements/").status_code == 404


def test_refund_preview_of_the_required_licence_says_the_portal_stops(
    portal, billing_staff, client
):
    """On-premise: refunding the Professional licence (back to Startup) stops the portal."""
    account = AccountFactory()
    pro = Product.objects.create(
        code="pro-licence",
        name="Professional licence",
        kind="perpetual_license",
        edition="professional",
    )
    support = Product.objects.create(code="support", name="Support", kind="support_contract")
    Price.objects.create(
        product=support, currency="USD", amount=Decimal("60"), scheme="per_seat", interval="year"
    )
    pro_price = Price.objects.create(
        product=pro, currency="USD", amount=Decimal("195"), scheme="per_seat", interval="one_off"
    )
    licence_order = billing.purchase_place(
        actor=owner_of(account), account=account, items=[{"price": pro_price.pk, "quantity": 1}]
    )
    billing.payment_record_manual(actor=billing_staff, order=licence_order, reference="L-1")
    assert selectors.account_edition(account) == "professional"
    order = billing.purchase_place(
        actor=owner_of(account), account=account, items=[{"price": portal.pk}]
    )
    billing.payment_record_manual(actor=billing_staff, order=order, reference="W-1")
    licence_line = licence_order.lines.get(kind="perpetual_license")
    lost = selectors.entitlements_lost(account, without_lines=[licence_line.pk])
    assert lost and "Customer Connection Portal for WordPress stops working" in lost[0]
    client.force_login(owner_of(account))
    client.get("/")
    page = client.post(
        f"/settings/billing/orders/{licence_order.pk}/refund/",
        {
            "account_id": account.pk,
            "lines": [licence_line.pk],
            "reason": "no_longer_needed",
            "payout_method": "original",
            "text": "We go back to Startup.",
            "action": "preview",
        },
    )
    assert "If refunded: Customer Connection Portal for WordPress stops working" in page.text


def test_plan_downgrade_preview_says_the_portal_stops(portal, billing_staff):
    account = AccountFactory()
    subscription = plan(account, "professional")
    order = billing.purchase_place(
        actor=owner_of(account), account=account, items=[{"price": portal.pk}]
    )
    billing.payment_record_manual(actor=billing_staff, order=order, reference="W-1")
    startup = Product.objects.create(
        code="plan-s", name="Startup cloud", kind="subscription", edition="startup"
    )
    cheaper = Price.objects.create(
        product=startup, currency="USD", amount=Decimal("0"), scheme="per_seat", interval="month"
    )
    quote = billing.subscription_plan_quote(
        subscription=subscription, price=cheaper, today=date(2026, 3, 10)
    )
    assert quote.stops and "Customer Connection Portal for WordPress" in quote.stops[0]
