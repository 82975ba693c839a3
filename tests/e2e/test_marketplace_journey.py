"""Browser: an owner finds an app in the Marketplace, starts its free trial, sees the
trial's last day and the §4 warning, then cancels it (confirming) and nothing is charged;
a paid app's page offers the policy's refund and links to the refund form."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing import services as billing
from billing.models import Order
from marketplace.models import Installation
from tests.factories import PASSWORD, AccountFactory, UserFactory, owner_of

pytestmark = pytest.mark.browser


def _sign_in(page, user):
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()


def test_trial_then_cancel_and_a_paid_apps_refund(
    page, live_server, transactional_db, screenshot, make_app
):
    from django.contrib.auth.models import Group

    account = AccountFactory(name="Acme", timezone="UTC")
    owner = owner_of(account)
    make_app(
        "meeting-notes", "subscription", "30", trial_days=14, category="ai", scopes=("calls:read",)
    )
    make_app("deal-digest", "subscription", "31", category="sales")
    _sign_in(page, owner)
    page.get_by_role("link", name="Marketplace").click()
    page.get_by_label("Search").fill("meeting")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("app-list")).to_contain_text("Meeting Notes")
    expect(page.get_by_test_id("app-list")).not_to_contain_text("Deal Digest")
    screenshot(page, "search")
    page.get_by_role("link", name="Meeting Notes").click()
    expect(page.get_by_test_id("app-scopes")).to_contain_text("calls:read")
    expect(page.get_by_test_id("plan-main")).to_contain_text(
        "No refunds once the paid cycle after your trial begins"
    )
    page.get_by_role("button", name="Start the 14-day free trial").click()
    last_day = timezone.now().date() + timedelta(days=13)
    expect(page.get_by_test_id("trial-end")).to_contain_text(
        f"its last day is {last_day:%B} {last_day.day}, {last_day.year}."
    )
    screenshot(page, "trial")
    cancel = page.get_by_test_id("cancel-form")
    cancel.get_by_role("button", name="Cancel the app").click()
    expect(page.locator(".messages")).to_contain_text("Tick the box to confirm")
    page.get_by_test_id("cancel-form").get_by_label("I want to cancel").check()
    page.get_by_test_id("cancel-form").get_by_role("button", name="Cancel the app").click()
    expect(page.locator(".messages")).to_contain_text("nothing is charged")
    assert Installation.objects.get(app__slug="meeting-notes").state == "cancelled"
    assert not Order.objects.filter(account=account).exists()

    page.goto("/marketplace/apps/deal-digest/")
    page.get_by_role("button", name="Install and order").click()
    order = Order.objects.get(account=account)
    staff = UserFactory(is_staff=True)
    staff.groups.add(Group.objects.get(name="Billing reviewer"))
    billing.payment_record_manual(actor=staff, order=order, reference="CARD-1")
    page.goto("/marketplace/apps/deal-digest/")
    expect(page.get_by_test_id("installation")).to_contain_text("Active")
    offer = page.get_by_test_id("refund-offer")
    expect(offer).to_contain_text("31.00 USD")  # asked on the first day: the whole cycle
    screenshot(page, "refund-offer")
    offer.get_by_role("link", name="Ask for a refund").click()
    expect(page).to_have_url(f"{live_server.url}/settings/billing/orders/{order.pk}/refund/")
