"""The purchase, payments, licences, credits and usage endpoints."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from billing import selectors as billing_selectors
from billing.models import Licence, Order, Price, Product
from tests.factories import AccountFactory, MembershipFactory, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mid_month():
    with time_machine.travel(datetime(2026, 11, 10, 17, 0, tzinfo=UTC), tick=False):
        yield


def _price(code, kind, amount, interval="one_off", scheme="flat", units=None, **extra):
    product = Product.objects.create(code=code, name=code.title(), kind=kind, units=units, **extra)
    return Price.objects.create(
        product=product, currency="USD", amount=Decimal(amount), scheme=scheme, interval=interval
    )


@pytest.fixture
def setup(api_client):
    prices = {
        "licence": _price("lic", "perpetual_license", "195", scheme="per_seat"),
        "support": _price("sup", "support_contract", "60", interval="year", scheme="per_seat"),
        "credits": _price("credits", "credit_pack", "100", units=1000),
        "sms": _price("sms", "usage", "0.04", interval="month"),
    }
    a, b = AccountFactory(), AccountFactory()
    api_client.force_authenticate(owner_of(a))
    return api_client, a, b, prices


def test_preview_then_buy_then_see_the_payment_licence_and_key(
    setup, billing_staff, django_capture_on_commit_callbacks
):
    api, a, _, prices = setup
    base = f"/api/v1/accounts/{a.pk}"
    catalogue = api.get(f"{base}/catalogue/").json()
    assert {row["code"] for row in catalogue} == {
        "lic",
        "credits",
    }  # support and usage aren't sold alone
    items = {"items": [{"price": prices["licence"].pk, "quantity": 2}]}
    quote = api.post(f"{base}/purchases/preview/", items, format="json").json()
    assert [line["kind"] for line in quote["lines"]] == ["perpetual_license", "support_contract"]
    assert quote["total"] == {"amount": "510.00", "currency": "USD"}
    assert not Order.objects.exists()

    stale = api.post(f"{base}/purchases/", {**items, "expected_total": "500.00"}, format="json")
    assert stale.status_code == 400 and "510.00 USD" in stale.json()["items"][0]
    created = api.post(f"{base}/purchases/", {**items, "expected_total": "510.00"}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "awaiting_payment"

    from billing import services

    with django_capture_on_commit_callbacks(execute=True):
        services.payment_record_manual(
            actor=billing_staff, order=Order.objects.get(), reference="BANK-9"
        )
    payments = api.get(f"{base}/payments/").json()
    assert payments["count"] == 1
    covered = [line["kind"] for line in payments["results"][0]["covered"]]
    assert covered == ["perpetual_license", "support_contract"]
    body = api.get(f"{base}/licences/").json()
    licence = Licence.objects.get()
    assert body["licensed_users"] == 2 and body["support_active"] is True
    assert body["licences"][0]["key"] == billing_selectors.licence_key(licence)
    assert body["support_end"] == "2027-11-09"

    # The installation activates with the key, without any login.
    api.force_authenticate(None)
    activated = api.post(
        "/api/v1/licences/activate/", {"key": body["licences"][0]["key"]}, format="json"
    )
    assert activated.status_code == 200 and activated.json()["users"] == 2
    wrong = api.post("/api/v1/licences/activate/", {"key": "LIC-000001-AAAA"}, format="json")
    assert wrong.status_code == 400 and "not valid" in wrong.json()["key"][0]


@pytest.mark.parametrize("key", ["LIC-\u00b2-AAAAAA-AAAAAA-AAAAAA-AAAAAA", f"LIC-{10**12}-A-B-C-D"])
def test_a_licence_key_whose_number_is_no_id_is_refused_not_500(api_client, key):
    # A superscript two passes str.isdigit() but not int(): the activation answered 500.
    response = api_client.post("/api/v1/licences/activate/", {"key": key}, format="json")
    assert response.status_code == 400
    assert "not valid" in response.json()["key"][0]


def test_credits_and_usage_endpoints(setup, django_capture_on_commit_callbacks):
    api, a, _, prices = setup
    base = f"/api/v1/accounts/{a.pk}"
    from billing import services
    from billing.money import Money
    from tests.factories import UserFactory

    admin = UserFactory(is_staff=True, is_superuser=True)
    services.ledger_adjust(
        actor=admin, account=a, amount=Money(Decimal("100"), "USD"), reason="promo"
    )
    bought = api.post(
        f"{base}/purchases/", {"items": [{"price": prices["credits"].pk}]}, format="json"
    )
    assert bought.json()["status"] == "paid"  # credit covered it
    use = {"product": "credits", "units": 400, "reference": "send-1"}
    assert api.post(f"{base}/credits/use/", use, format="json").json()[0]["left"] == 600
    assert api.post(f"{base}/credits/use/", use, format="json").json()[0]["left"] == 600
    too_many = api.post(
        f"{base}/credits/use/", {**use, "units": 601, "reference": "send-2"}, format="json"
    )
    assert too_many.status_code == 400 and "Only 600" in too_many.json()["units"][0]
    unknown = api.post(f"{base}/credits/use/", {**use, "product": "nope"}, format="json")
    assert unknown.status_code == 400 and "nope" in unknown.json()["product"][0]

    recorded = api.post(
        f"{base}/usage/", {"product": "sms", "quantity": 250, "reference": "day-1"}, format="json"
    )
    assert recorded.status_code == 201
    assert recorded.json()[0]["estimate"] == {"amount": "10.00", "currency": "USD"}
    bad = api.post(
        f"{base}/usage/",
        {"product": "sms", "quantity": 1, "reference": "d2", "used_on": "2026-10-31"},
        format="json",
    )
    assert bad.status_code == 400 and "already billed" in bad.json()["used_on"][0]


def test_another_accounts_billing_answers_404_and_members_403(setup):
    api, a, b, prices = setup
    for path in ("catalogue/", "payments/", "licences/", "credits/", "usage/"):
        assert api.get(f"/api/v1/accounts/{b.pk}/{path}").status_code == 404
    other = api.post(
        f"/api/v1/accounts/{b.pk}/purchases/",
        {"items": [{"price": prices["credits"].pk}]},
        format="json",
    )
    assert other.status_code == 404 and not Order.objects.exists()
    member = MembershipFactory(account=a, role="member").user
    api.force_authenticate(member)
    assert api.get(f"/api/v1/accounts/{a.pk}/payments/").status_code == 403
    # An account without licences has no licence view.
    api.force_authenticate(owner_of(a))
    assert api.get(f"/api/v1/accounts/{a.pk}/licences/").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "items"),
        ({"items": []}, "items"),
        ({"items": [{"price": "x"}]}, "items"),
        ({"items": [{"price": 1, "quantity": 0}]}, "items"),
        ({"items": [{"price": 2**70}]}, "items"),
        ({"items": [{"price": 1}], "expected_total": "lots"}, "expected_total"),
    ],
)
def test_bad_purchase_bodies_name_the_field(setup, body, field):
    api, a, _, _ = setup
    response = api.post(f"/api/v1/accounts/{a.pk}/purchases/", body, format="json")
    assert response.status_code == 400 and field in response.json()
