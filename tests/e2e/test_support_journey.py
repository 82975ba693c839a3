"""Browser: the designated support contact opens an incident on the Support page; a
support agent answers it in the staff console; the contact sees the answer."""

from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import Subscription
from support.models import Incident
from tests.factories import PASSWORD, UserFactory, owner_of
from tests.support.test_incidents import cloud_account

pytestmark = pytest.mark.browser


def _agent_page(browser, live_server):
    """A second browser signed in as a support agent with two-factor set up."""
    agent = UserFactory(is_staff=True, email="agent@vendor.example")
    agent.groups.add(Group.objects.get(name="Support agent"))
    Authenticator.objects.create(user=agent, type=Authenticator.Type.TOTP, data={"secret": "x"})
    client = Client()
    client.force_login(agent)
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
    return agent, context, context.new_page()


def _account_with_a_live_plan():
    """cloud_account's plan, moved to a period around today (the browser runs in real time)."""
    today = timezone.now().date()
    account = cloud_account(2)
    Subscription.objects.filter(account=account).update(
        current_period_start=today - timedelta(days=10),
        current_period_end=today + timedelta(days=20),
    )
    return account


def test_support_journey(page, browser, live_server, transactional_db, screenshot):
    account = _account_with_a_live_plan()
    contact = owner_of(account)

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(contact.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.goto("/support/")
    expect(page.get_by_test_id("support-quota")).to_contain_text("0 of 1")
    form = page.get_by_test_id("incident-form")
    form.get_by_label("Subject").fill("The weekly sales report fails")
    form.get_by_label("Severity").select_option("P2")
    form.get_by_label("What happens").fill(
        "Since this morning the weekly sales report stops with error 500."
    )
    screenshot(page, "new-incident")
    form.get_by_role("button", name="Open the incident").click()
    status = page.get_by_test_id("incident-status")
    expect(status).to_contain_text("Open")
    expect(status).to_contain_text("P2")
    incident = Incident.objects.get(account=account)
    expect(page.get_by_role("heading", level=1)).to_contain_text(incident.number)
    screenshot(page, "opened")
    page.goto("/support/")
    expect(page.get_by_test_id("incidents")).to_contain_text(incident.number)
    expect(page.get_by_test_id("support-quota")).to_contain_text("1 of 1")
    page.get_by_test_id("incidents").get_by_role("link", name=incident.number).click()
    expect(page.get_by_test_id("incident-status")).to_contain_text("Open")

    agent, context, staff = _agent_page(browser, live_server)
    try:
        staff.goto("/admin/support/incident/")
        queue = staff.locator("#result_list")
        expect(queue).to_contain_text("The weekly sales report fails")
        screenshot(staff, "queue")
        queue.get_by_role("link", name=incident.number).click()
        expect(staff.get_by_test_id("description")).to_contain_text("error 500")
        staff.get_by_label("Answer the customer").fill(
            "We found it: a stuck export job. It runs again now; please try the report."
        )
        staff.get_by_role("button", name="Send the answer").click()
        expect(staff.get_by_test_id("summary")).to_contain_text("In progress")
        expect(staff.get_by_test_id("assignee")).to_contain_text(agent.email)
        expect(staff.get_by_test_id("thread")).to_contain_text("a stuck export job")
        screenshot(staff, "answered")
    finally:
        context.close()

    page.reload()
    expect(page.get_by_test_id("incident-status")).to_contain_text("In progress")
    expect(page.get_by_test_id("incident-message")).to_contain_text("a stuck export job")
    screenshot(page, "customer-sees-answer")
    incident.refresh_from_db()
    assert incident.state == "in_progress" and incident.first_response_at is not None
