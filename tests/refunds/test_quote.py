"""The engine where customers and staff see it: the Billing page, the quote API and the
console's simulator; and the engine's purity."""

import ast
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.urls import reverse

from billing import services
from billing import services as billing_services
from billing.models import Order, Price, Product
from refunds import services as refund_services
from tests.accounts.test_hardening import staff_client
from tests.factories import AccountFactory, MembershipFactory, ResellerFactory, owner_of

pytestmark = pytest.mark.django_db
ENGINE = Path(__file__).resolve().parents[2] / "refunds" / "policy"


@pytest.fixture(autouse=True)
def _acelle(settings):
    settings.REFUND_POLICY = "acelle"


@pytest.fixture
def bought(billing_staff):
    """Acme bought a credit pack and a plugin on 2 March 2026 (New York), paid at once."""
    account = AccountFactory(name="Acme", timezone="America/New_York")
    credits = Product.objects.create(code="cr", name="Credits", kind="credit_pack", units=1000)
    plugin = Product.objects.create(code="pl", name="Plugin", kind="plugin")
    prices = [
        Price.objects.create(
            product=credits, currency="USD", amount=Decimal("100"), interval="one_off"
        ),
        Price.objects.create(
            product=plugin, currency="USD", amount=Decimal("49"), interval="one_off"
        ),
    ]
    paid_at = datetime(2026, 3, 2, 15, tzinfo=UTC)
    order = billing_services.purchase_place(
        actor=owner_of(account),
        account=account,
        items=[{"price": p.pk} for p in prices],
        now=paid_at,
    )
    services.payment_record_manual(actor=billing_staff, order=order, reference="B", now=paid_at)
    order.refresh_from_db()
    return account, order


def test_the_quote_api_decides_per_line_with_clauses(api_client, bought):
    account, order = bought
    credits, plugin = order.lines.order_by("pk")
    credits.units_used = 250
    credits.save(update_fields=["units_used"])
    api_client.force_authenticate(owner_of(account))
    with time_machine.travel(datetime(2026, 3, 20, 16, tzinfo=UTC), tick=False):
        response = api_client.post(
            "/api/v1/refunds/quote", {"lines": [credits.pk, plugin.pk]}, format="json"
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["policy"] == "acelle" and body["date"] == "2026-03-20"
    first, second = body["decisions"]
    assert first["outcome"] == "refund" and first["amount"] == {
        "amount": "75.00",
        "currency": "USD",
    }
    assert "2.2" in first["clause"] and first["last_day"] == "2026-04-01"
    assert "750 of 1,000 credits unused" in first["explanation"]
    # The plugin key was sent but never activated: not delivered yet (acelle §3.1).
    assert second["outcome"] == "refund" and "3.1" in second["clause"]


def test_another_accounts_lines_answer_404_and_unpaid_ones_400(api_client, bought):
    account, order = bought
    other = AccountFactory()
    api_client.force_authenticate(owner_of(other))
    line = order.lines.first()
    assert (
        api_client.post("/api/v1/refunds/quote", {"lines": [line.pk]}, format="json").status_code
        == 404
    )
    assert (
        api_client.post("/api/v1/refunds/quote/", {"lines": [2**70]}, format="json").status_code
        == 400
    )
    member = MembershipFactory(account=account, role="member").user
    api_client.force_authenticate(member)
    assert (
        api_client.post("/api/v1/refunds/quote", {"lines": [line.pk]}, format="json").status_code
        == 404
    )
    Order.objects.filter(pk=order.pk).update(status="awaiting_payment")
    api_client.force_authenticate(owner_of(account))
    unpaid = api_client.post("/api/v1/refunds/quote", {"lines": [line.pk]}, format="json")
    assert unpaid.status_code == 400 and "not paid" in unpaid.json()["lines"][0]
    bad = api_client.post(
        "/api/v1/refunds/quote", {"lines": [line.pk], "reason": "boredom"}, format="json"
    )
    assert bad.status_code == 400 and "reason" in bad.json()


def test_the_billing_page_shows_what_a_request_today_would_get(client, bought):
    account, _ = bought
    client.force_login(owner_of(account))
    with time_machine.travel(datetime(2026, 3, 5, 16, tzinfo=UTC), tick=False):
        page = client.get(reverse("billing_refunds")).text
    assert (
        'Refundable today: $100.00, until March 9, 2026. <a href="/policies/acelle/#s2-1" '
        'class="policy-link">Before use — fully refundable (section 2.1)</a>' in page
    )
    with time_machine.travel(datetime(2026, 4, 5, 16, tzinfo=UTC), tick=False):
        later = client.get(reverse("billing_refunds")).text
    assert (
        'Not refundable. <a href="/policies/acelle/#s2-3" class="policy-link">'
        "Add-ons not eligible for refund (section 2.3)</a>" in later
    )


def test_a_reseller_account_is_redirected_under_onecrm(settings, bought):
    settings.REFUND_POLICY = "onecrm"
    account, order = bought
    account.reseller = ResellerFactory(name="Northwind Partners")
    account.save()
    decisions = refund_services.decisions_for(
        account=account, lines=list(order.lines.all()), on=date(2026, 3, 3)
    )
    assert {d.outcome for d in decisions.values()} == {"redirect"}
    assert "Northwind Partners" in next(iter(decisions.values())).explanation


def test_staff_simulate_any_accounts_lines_on_any_date(client, bought):
    account, _ = bought
    staff_client(client, group="Billing reviewer")
    url = reverse("admin:refunds_refundsimulation_changelist")
    page = client.get(url)
    assert page.status_code == 200 and "acelle §2.2" in page.text and "uncovered" in page.text
    result = client.get(
        url,
        {
            "account": account.pk,
            "on": "2026-04-20",
            "reason": "no_longer_needed",
            "policy": "acelle",
        },
    )
    assert result.status_code == 200
    assert "2.3" in result.text and "Credits x 1" in result.text
    # Staff read amounts to the cent, not the database's four places.
    assert "<td>$100.00</td>" in result.text and "100.0000" not in result.text
    other = client.get(
        url,
        {
            "account": account.pk,
            "lines": "999999",
            "on": "2026-04-20",
            "reason": "billing_error",
            "policy": "onecloud",
        },
    )
    assert "999999 is not a paid line of this account." in other.text
    bad = client.get(
        url,
        {
            "account": account.pk,
            "lines": "a,b",
            "on": "2026-04-20",
            "reason": "outage",
            "policy": "acelle",
        },
    )
    assert "“a,b” is not a line of this account." in bad.text


def test_support_agents_cannot_open_the_simulator(client):
    staff_client(client, group="Support agent")
    assert client.get(reverse("admin:refunds_refundsimulation_changelist")).status_code == 403


def test_the_engine_imports_no_orm_and_reads_no_clock():
    for path in ENGINE.rglob("*.py"):
        if path.name == "cases.py":
            continue  # the case-file reader, not the engine
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("django", "billing", "accounts")), path
            if isinstance(node, ast.Attribute) and node.attr in ("now", "today"):
                raise AssertionError(f"{path}: reads the clock ({node.attr})")


def test_a_full_order_request_counts_the_lines_left_out(api_client, billing_staff):
    """acelle §4: a used credit pack left out of the request still counts as used."""
    account = AccountFactory(timezone="UTC")
    credits = Product.objects.create(code="cr", name="Credits", kind="credit_pack", units=10)
    quota = Product.objects.create(code="q", name="Storage", kind="quota_addon")
    prices = [
        Price.objects.create(product=p, currency="USD", amount=Decimal("20"), interval="one_off")
        for p in (credits, quota)
    ]
    paid_at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    order = billing_services.purchase_place(
        actor=owner_of(account),
        account=account,
        items=[{"price": p.pk} for p in prices],
        now=paid_at,
    )
    services.payment_record_manual(actor=billing_staff, order=order, reference="B", now=paid_at)
    # Quota add-ons activate on payment; this one is taken as not activated, so that only
    # the credit pack can make the order "used".
    order.lines.filter(kind="quota_addon").update(activated_at=None)
    pack, storage = order.lines.order_by("pk")
    api_client.force_authenticate(owner_of(account))

    def ask():
        with time_machine.travel(datetime(2026, 3, 12, 12, tzinfo=UTC), tick=False):
            body = api_client.post(
                "/api/v1/refunds/quote", {"lines": [storage.pk], "full_order": True}, format="json"
            ).json()
        return {row["line"]: row for row in body["decisions"]}

    decisions = ask()
    assert set(decisions) == {pack.pk, storage.pk}  # the whole order was decided
    assert decisions[storage.pk]["outcome"] == "review" and "§4" in decisions[storage.pk]["clause"]
    pack.units_used = 1
    pack.save(update_fields=["units_used"])
    decisions = ask()
    assert decisions[storage.pk]["outcome"] == "none" and "2.2" in decisions[storage.pk]["clause"]
