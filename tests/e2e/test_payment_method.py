"""Browser: an owner adds a card through Stripe.js (localstripe's stand-in) and sees it."""

import pytest
from playwright.sync_api import expect

from billing import payment_methods
from tests.factories import PASSWORD, AccountFactory, owner_of

pytestmark = pytest.mark.browser


def test_owner_adds_a_card_and_the_billing_page_shows_it(
    page, live_server, transactional_db, stripe_on, screenshot
):
    account = AccountFactory(name="Initech")

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(owner_of(account).email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.goto("/settings/billing/")
    section = page.get_by_test_id("payment-method")
    expect(section).to_contain_text("No card is on file")
    section.get_by_role("link", name="Add or replace card").click()

    # localstripe's Stripe.js mounts plain inputs where Stripe's would mount its iframe.
    card = page.get_by_test_id("card-element")
    card.get_by_placeholder("number").fill("4242424242424242")
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("31")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("10001")
    screenshot(page, "card")
    page.get_by_role("button", name="Save card").click()

    expect(page.get_by_role("status")).to_contain_text("Visa ending in 4242, expires 12/2031")
    expect(page.get_by_test_id("payment-method")).to_contain_text("ending in 4242")
    screenshot(page, "saved")
    card_on_file = payment_methods.card_on_file(account=account)
    assert (card_on_file.last4, card_on_file.exp_year) == ("4242", 2031)
