"""Browser: an owner previews a seat change, confirms it, and sees the charge and the seats."""

from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing import selectors as billing_selectors
from billing import services
from billing.models import Order, Price, Product, Subscription
from billing.money import Money
from billing.quotes import seat_change_quote
from tests.factories import PASSWORD, AccountFactory, owner_of

pytestmark = pytest.mark.browser


def test_owner_adds_seats_with_a_preview_and_sees_the_charge(
    page, live_server, transactional_db, screenshot
):
    account = AccountFactory(name="Initech", seats_paid=3)
    today = billing_selectors.account_today(account)
    start = today.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    product = Product.objects.create(code="pro", name="Professional", kind="subscription")
    price = Price.objects.create(
        product=product,
        currency="USD",
        amount=Decimal("31.00"),
        scheme="per_seat",
        interval="month",
    )
    Subscription.objects.create(
        account=account, price=price, quantity=3, current_period_start=start, current_period_end=end
    )
    # Enough credit to pay for the change, so it is paid (and the seats given) at once.
    services.ledger_credit(
        actor=None,
        account=account,
        amount=Money(Decimal("200"), "USD"),
        kind="seat_credit",
        description="Credit from last year",
    )
    expected = seat_change_quote(
        unit_price=Money(Decimal("31"), "USD"),
        current=3,
        new=5,
        period_start=start,
        period_end=end,
        today=today,
    )

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(owner_of(account).email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.locator("nav.usernav").get_by_role("link", name="Account Settings").click()
    page.get_by_role("navigation", name="Account Settings").get_by_role(
        "link", name="Billing"
    ).click()
    page.get_by_role("navigation", name="Billing").get_by_role("link", name="Plan & seats").click()
    expect(page.get_by_test_id("seats-paid")).to_contain_text("3 seats paid")
    screenshot(page, "billing")

    page.get_by_label("Seats", exact=True).fill("5")
    page.get_by_role("button", name="Preview the change").click()
    quote = page.get_by_test_id("seat-quote")
    shown = f"${expected.amount.amount:,}"
    expect(quote).to_contain_text(f"Adding 2 seats now costs {shown}")
    expect(quote.get_by_test_id("preview-credit")).to_have_text(f"\u2212{shown}")
    expect(quote.get_by_test_id("preview-due")).to_have_text("$0.00")
    screenshot(page, "preview")
    assert Subscription.objects.get().quantity == 3  # nothing yet

    quote.get_by_role("button", name="Place the order").click()
    expect(page.get_by_role("status")).to_contain_text("2 seat(s) added: you have 5 seats now")
    expect(page.get_by_test_id("seats-paid")).to_contain_text("5 seats paid")
    page.get_by_role("navigation", name="Billing").get_by_role("link", name="Invoices").click()
    orders = page.get_by_test_id("orders")
    expect(orders).to_contain_text("2 more seat(s) of Professional")
    expect(orders).to_contain_text("Paid")
    left = Money(Decimal("200"), "USD") - expected.amount
    page.get_by_role("navigation", name="Billing").get_by_role(
        "link", name="Credits & usage"
    ).click()
    expect(page.get_by_test_id("credit-balance")).to_contain_text(f"${left.amount:,}")
    screenshot(page, "confirmed")

    order = Order.objects.get(account=account)
    assert order.status == "paid" and order.total == expected.amount.amount
    account.refresh_from_db()
    assert account.seats_paid == 5
