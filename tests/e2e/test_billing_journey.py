"""Browser: overview → Plan & seats → preview → place the order, on a desktop and on a
phone. With the manual gateway the order's page gives the bank details and reference."""

from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing import selectors as billing_selectors
from billing import services
from billing.models import Order, Price, Product, Subscription
from billing.money import Money
from tests.factories import PASSWORD, AccountFactory, owner_of

pytestmark = pytest.mark.browser


def _fits(page, testid: str, width: int) -> None:
    box = page.get_by_test_id(testid).bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box


@pytest.mark.parametrize("width", [1280, 360])
def test_upgrade_from_the_overview_through_the_preview_to_the_order(
    page, live_server, transactional_db, screenshot, settings, width
):
    settings.BILLING_GATEWAY = "manual"
    settings.VENDOR_BANK_DETAILS = "Vendor Bank, IBAN DE00 1234 5678 9012 3456 78"
    page.set_viewport_size({"width": width, "height": 800})
    account = AccountFactory(name="Initech", seats_paid=3)
    today = billing_selectors.account_today(account)
    start = today.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    prices = {
        name: Price.objects.create(
            product=Product.objects.create(code=name.lower(), name=name, kind="subscription"),
            currency="USD",
            amount=Decimal(amount),
            scheme="per_seat",
            interval="month",
        )
        for name, amount in [("Professional", "31.00"), ("Enterprise", "62.00")]
    }
    subscription = Subscription.objects.create(
        account=account,
        price=prices["Professional"],
        quantity=3,
        current_period_start=start,
        current_period_end=end,
    )
    services.ledger_credit(
        actor=None,
        account=account,
        amount=Money(Decimal("10"), "USD"),
        kind="seat_credit",
        description="Earlier credit",
    )
    _, totals = services.subscription_plan_preview(
        subscription=subscription, price=prices["Enterprise"], today=today
    )

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(owner_of(account).email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.goto("/settings/billing/")
    expect(page.get_by_test_id("summary-plan")).to_contain_text("Professional")
    expect(page.get_by_test_id("summary-credit")).to_contain_text("$10.00")
    expect(page.get_by_test_id("payment-by-transfer")).to_contain_text("bank transfer")
    screenshot(page, f"overview-{width}")

    page.get_by_test_id("summary-plan").get_by_role("link", name="Plan & seats").click()
    select = page.get_by_label("Plan", exact=True)
    expect(select.locator("option:checked")).to_contain_text("Professional")
    select.select_option(label="Enterprise: $62.00 per seat, monthly")
    page.get_by_role("button", name="Preview the plan change").click()

    preview = page.get_by_test_id("plan-quote")
    expect(preview.get_by_test_id("preview-total")).to_have_text(f"${totals.total.amount:,}")
    expect(preview.get_by_test_id("preview-credit")).to_have_text("\u2212$10.00")
    expect(preview.get_by_test_id("preview-due")).to_have_text(f"${totals.due.amount:,}")
    _fits(page, "preview-amounts", width)
    screenshot(page, f"preview-{width}")
    assert not Order.objects.exists()

    preview.get_by_role("button", name="Place the order").click()
    order = Order.objects.get()
    expect(page.get_by_role("heading", name=f"Order {order.number}")).to_be_visible()
    transfer = page.get_by_test_id("bank-transfer")
    expect(transfer.get_by_test_id("bank-details")).to_contain_text("IBAN DE00 1234")
    expect(transfer.get_by_test_id("transfer-reference")).to_have_text(order.number)
    expect(transfer.get_by_test_id("transfer-amount")).to_have_text(f"${totals.due.amount:,}")
    expect(transfer.get_by_test_id("blocked-until-paid")).to_be_visible()
    _fits(page, "bank-transfer", width)
    screenshot(page, f"order-{width}")
    assert (order.total, order.credit_applied) == (totals.total.amount, totals.credit.amount)
