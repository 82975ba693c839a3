from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.models import Price, Product, Subscription
from tests.factories import AccountFactory, MembershipFactory, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mid_period():
    with time_machine.travel(datetime(2026, 11, 10, 12, 0, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def setup(api_client):
    product = Product.objects.create(code="pro", name="Professional", kind="subscription")
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("30"), scheme="per_seat", interval="month"
    )

    def account_with_plan(quantity=3):
        account = AccountFactory(seats_paid=quantity)
        sub = Subscription.objects.create(
            account=account,
            price=price,
            quantity=quantity,
            current_period_start=date(2026, 11, 1),
            current_period_end=date(2026, 12, 1),
        )
        return account, sub

    a, sub_a = account_with_plan()
    b, sub_b = account_with_plan()
    api_client.force_authenticate(owner_of(a))
    return api_client, a, sub_a, b, sub_b


def test_overview_preview_and_change(setup):
    api, a, sub, _, _ = setup
    body = api.get(f"/api/v1/accounts/{a.pk}/billing/").json()
    assert body["seats_paid"] == 3 and body["subscription"]["quantity"] == 3
    assert body["credit_balance"] == {"amount": "0.00", "currency": "USD"}
    url = f"/api/v1/accounts/{a.pk}/subscriptions/{sub.pk}/seats/"
    quote = api.post(url + "preview/", {"quantity": 2}, format="json").json()
    assert quote["kind"] == "credit" and quote["amount"]["currency"] == "USD"
    sub.refresh_from_db()
    assert sub.quantity == 3
    changed = api.post(url, {"quantity": 2}, format="json").json()
    assert changed["subscription"]["quantity"] == 2 and changed["order"] is None
    ledger = api.get(f"/api/v1/accounts/{a.pk}/ledger/").json()
    assert ledger["balance"] == quote["amount"] and ledger["entries"][0]["kind"] == "seat_credit"
    api.post(url, {"quantity": 4}, format="json")
    orders = api.get(f"/api/v1/accounts/{a.pk}/orders/").json()
    assert orders["count"] == 1 and orders["results"][0]["lines"][0]["quantity"] == 2


@pytest.mark.parametrize(
    "body", [{}, {"quantity": 0}, {"quantity": "x"}, {"quantity": None}, [], {"quantity": 10**9}]
)
def test_bad_quantities_are_400_naming_the_field(setup, body):
    api, a, sub, _, _ = setup
    url = f"/api/v1/accounts/{a.pk}/subscriptions/{sub.pk}/seats/"
    for path in (url, url + "preview/"):
        response = api.post(path, body, format="json")
        assert response.status_code == 400
        assert "quantity" in response.json() or "non_field_errors" in response.json()


def test_going_below_the_seats_in_use_is_400(setup):
    api, a, sub, _, _ = setup
    MembershipFactory.create_batch(2, account=a, has_seat=True)
    response = api.post(
        f"/api/v1/accounts/{a.pk}/subscriptions/{sub.pk}/seats/", {"quantity": 2}, format="json"
    )
    assert response.status_code == 400 and "quantity" in response.json()


def test_another_accounts_plan_is_404_like_a_missing_one(setup):
    api, a, _, b, sub_b = setup
    for url in (
        f"/api/v1/accounts/{a.pk}/subscriptions/{sub_b.pk}/seats/",
        f"/api/v1/accounts/{b.pk}/subscriptions/{sub_b.pk}/seats/",
    ):
        foreign = api.post(url, {"quantity": 9}, format="json")
        missing = api.post(url.replace(str(sub_b.pk), "999999"), {"quantity": 9}, format="json")
        assert foreign.status_code == missing.status_code == 404
    for path in ("billing/", "orders/", "ledger/"):
        assert api.get(f"/api/v1/accounts/{b.pk}/{path}").status_code == 404
    sub_b.refresh_from_db()
    assert sub_b.quantity == 3


def test_members_get_403(setup):
    api, a, sub, _, _ = setup
    member = MembershipFactory(account=a, role="member", has_seat=False)
    api.force_authenticate(member.user)
    assert api.get(f"/api/v1/accounts/{a.pk}/billing/").status_code == 403
    response = api.post(
        f"/api/v1/accounts/{a.pk}/subscriptions/{sub.pk}/seats/", {"quantity": 5}, format="json"
    )
    assert response.status_code == 403


def test_plan_preview_change_and_cancel(setup):
    api, a, sub, _, _ = setup
    product = Product.objects.create(code="lite", name="Lite", kind="subscription")
    lite = Price.objects.create(
        product=product, currency="USD", amount=Decimal("10"), scheme="per_seat", interval="month"
    )
    base = f"/api/v1/accounts/{a.pk}/subscriptions/{sub.pk}/"
    quote = api.post(base + "plan/preview/", {"price": lite.pk}, format="json").json()
    assert quote["kind"] == "downgrade" and quote["amount"]["amount"] == "0.00"
    changed = api.post(base + "plan/", {"price": lite.pk}, format="json").json()
    assert changed["subscription"]["pending_plan"] == "Lite" and changed["order"] is None
    assert api.post(base + "plan/", {"price": 999999}, format="json").status_code == 400
    cancelled = api.post(base + "cancel/", {"cancel": True}, format="json").json()
    assert cancelled["cancel_at_period_end"] is True
    assert api.post(base + "cancel/", {"cancel": "maybe"}, format="json").status_code == 400
