"""Browser: a customer asks for a refund with evidence; staff approve one line and deny
the other in the console; the customer sees the decision, then the payout."""

import pytest
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client
from playwright.sync_api import expect

from refunds.models import RefundRequest
from tests.factories import PASSWORD, UserFactory, owner_of

pytestmark = pytest.mark.browser


def _staff_page(browser, live_server):
    """A second browser signed in as a billing reviewer with two-factor set up."""
    reviewer = UserFactory(is_staff=True, email="reviewer@vendor.example")
    reviewer.groups.add(Group.objects.get(name="Billing reviewer"))
    Authenticator.objects.create(user=reviewer, type=Authenticator.Type.TOTP, data={"secret": "x"})
    client = Client()
    client.force_login(reviewer)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    return context, context.new_page()


def test_refund_journey(
    page, browser, live_server, transactional_db, paid_order, screenshot, tmp_path, settings
):
    settings.MEDIA_ROOT = str(tmp_path)
    account, _ = paid_order_now(paid_order)
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(owner_of(account).email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.goto("/settings/billing/refunds/")
    page.get_by_role("link", name="Ask for a refund").click()
    form = page.get_by_test_id("refund-form")
    for checkbox in form.get_by_role("checkbox").all()[:2]:
        checkbox.check()
    form.get_by_label("Reason").select_option("billing_error")
    form.get_by_label("Tell us").fill("We were charged for a plugin we never ordered.")
    form.get_by_label("As account credit").check()
    page.get_by_role("button", name="See what the policy says").click()
    expect(page.get_by_test_id("refund-preview")).to_contain_text("What our policy says")
    screenshot(page, "preview")
    evidence = tmp_path / "statement.pdf"
    evidence.write_bytes(b"%PDF-1.4 bank statement")
    page.get_by_label("Evidence (PDF, images or text)").set_input_files(str(evidence))
    page.get_by_role("button", name="Send the refund request").click()
    expect(page.get_by_test_id("refund-status")).to_contain_text("Received")
    request = RefundRequest.objects.get()
    expect(page.get_by_text("statement.pdf")).to_be_visible()
    screenshot(page, "sent")

    context, staff = _staff_page(browser, live_server)
    try:
        staff.goto(f"/admin/refunds/refundrequest/{request.pk}/change/")
        credits, plugin = request.lines.order_by("order_line_id")
        staff.get_by_test_id(f"line-{credits.pk}").get_by_role(
            "button", name="Save the decision"
        ).click()
        row = staff.get_by_test_id(f"line-{plugin.pk}")
        row.get_by_label("Deny").check()
        row.get_by_label("Reason if denied").fill("The plugin was ordered on 2 March.")
        row.get_by_role("button", name="Save the decision").click()
        expect(staff.get_by_test_id(f"line-{plugin.pk}")).to_contain_text("Denied")
        staff.get_by_role("button", name="Decide").click()
        expect(staff.get_by_test_id("summary")).to_contain_text("Credited")
        screenshot(staff, "console")
    finally:
        context.close()

    page.reload()
    expect(page.get_by_test_id("refund-status")).to_contain_text("Credited to your account")
    lines = page.get_by_test_id("refund-lines")
    expect(lines).to_contain_text("Approved: $100.00")
    expect(lines).to_contain_text("Denied: The plugin was ordered on 2 March.")
    expect(page.get_by_test_id("refund-status")).to_contain_text(
        "$100.00 was put on your account as credit"
    )
    screenshot(page, "decided")


def paid_order_now(paid_order):
    from django.utils import timezone

    return paid_order(when=timezone.now())
