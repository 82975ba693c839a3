"""Browser: an on-premise owner buys licences (support included) and sees the key, the
support dates and the seats they give."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing import selectors as billing_selectors
from billing import services
from billing.models import Licence, Order, Price, Product
from billing.money import Money
from tests.factories import PASSWORD, AccountFactory, owner_of

pytestmark = pytest.mark.browser


def _sign_in(page, email):
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.goto("/settings/billing/add-ons/")


def test_owner_buys_licences_with_their_first_year_of_support(
    page, live_server, transactional_db, screenshot
):
    account = AccountFactory(name="Initech", seats_paid=1)
    licence = Product.objects.create(
        code="lic", name="Professional licence", kind="perpetual_license", edition="professional"
    )
    support = Product.objects.create(
        code="sup", name="Support and updates", kind="support_contract"
    )
    Price.objects.create(
        product=licence,
        currency="USD",
        amount=Decimal("195"),
        scheme="per_seat",
        interval="one_off",
    )
    Price.objects.create(
        product=support, currency="USD", amount=Decimal("60"), scheme="per_seat", interval="year"
    )
    # Credit covers the order, so it is paid, and delivered, at once.
    services.ledger_credit(
        actor=None,
        account=account,
        amount=Money(Decimal("2000"), "USD"),
        kind="seat_credit",
        description="Prepaid",
    )
    _sign_in(page, owner_of(account).email)
    page.get_by_test_id("buy-link").click()
    page.get_by_label("Quantity of Professional licence").fill("4")
    page.get_by_role("button", name="Preview the order").click()
    quote = page.get_by_test_id("purchase-quote")
    expect(quote).to_contain_text("Professional licence, licence for 4 user(s): $780.00")
    expect(quote).to_contain_text("first year, mandatory")
    expect(quote.get_by_test_id("preview-total")).to_have_text("$1,020.00")
    expect(quote.get_by_test_id("preview-credit")).to_have_text("\u2212$1,020.00")
    expect(quote.get_by_test_id("preview-due")).to_have_text("$0.00")
    screenshot(page, "preview")
    assert not Order.objects.exists()

    quote.get_by_role("button", name="Place the order").click()
    expect(page.get_by_role("status")).to_contain_text("What you bought is yours now")
    page.get_by_role("navigation", name="Billing").get_by_role("link", name="Plan & seats").click()
    key = billing_selectors.licence_key(Licence.objects.get())
    on_premise = page.get_by_test_id("on-premise")
    expect(on_premise).to_contain_text(key)
    expect(page.get_by_test_id("support-contract")).to_contain_text(
        "Support and updates for 4 user(s)"
    )
    expect(page.get_by_test_id("seat-usage")).to_contain_text("1 of 4")
    page.get_by_role("navigation", name="Billing").get_by_role("link", name="Invoices").click()
    expect(page.get_by_test_id("payments").or_(page.get_by_test_id("orders"))).to_contain_text(
        "licence for 4 user(s)"
    )
    # What a refund request made today would get (acelle §3.1: the key is not yet
    # downloaded, so the licence is not delivered).
    expect(page.get_by_test_id("orders")).to_contain_text(
        "Refundable today: $780.00. Default rule — no refund after delivery (section 3.1)"
    )
    screenshot(page, "licences")
