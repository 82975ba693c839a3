"""An owner signs in and invites people until the licensed seats run out, in a real browser."""

import re

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Invitation
from accounts.selectors import seat_usage
from tests.factories import PASSWORD, AccountFactory, MembershipFactory, owner_of

FIRST = "first.hire@example.com"
SECOND = "second.hire@example.com"


def _invite(page, email: str, *, with_seat: bool = True):
    """Fill in and send the invite form; returns the response to the POST.

    The answer lands on the same URL, so callers first assert something only the
    new page has (the success message, the error) before anything else.
    """
    form = page.locator("form.invite-form")
    form.get_by_label("Email address").fill(email)
    form.get_by_label("Role").select_option("member")
    form.get_by_label("Give a licensed seat").set_checked(with_seat)
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/settings/users/")
    ) as posted:
        form.get_by_role("button", name="Send invitation").click()
    return posted.value


@pytest.mark.browser
def test_owner_invites_until_the_seats_run_out(page, live_server, transactional_db, screenshot):
    account = AccountFactory(name="Acme Robotics", seats_paid=3)
    owner = owner_of(account)
    MembershipFactory(account=account)
    assert seat_usage(account=account, now=timezone.now()).used == 2

    # Sign in through allauth's own page.
    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", name="Sign In")).to_be_visible()
    screenshot(page, "login")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Robotics")
    expect(page.get_by_test_id("seat-usage")).to_have_text("2 of 3")
    screenshot(page, "dashboard")

    # Account Settings (the link in the top bar), then the Users & seats tab.
    page.locator("nav.usernav").get_by_role("link", name="Account Settings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Account Settings")
    tabs = page.get_by_role("navigation", name="Account Settings")
    tabs.get_by_role("link", name="Users & seats").click()
    expect(page).to_have_url(f"{live_server.url}/settings/users/")
    expect(tabs.get_by_role("link", name="Users & seats")).to_have_attribute("aria-current", "page")
    usage = page.get_by_test_id("seat-usage")
    expect(usage).to_contain_text("2 of 3 licensed seats in use")
    expect(page.locator("table.invitations")).to_have_count(0)
    screenshot(page, "users-before")

    # First invitation with a seat: accepted, reserves the last seat.
    response = _invite(page, FIRST)
    assert response.status == 302
    expect(page.locator(".msg-success")).to_contain_text(f"Invitation sent to {FIRST}.")
    expect(page).to_have_url(f"{live_server.url}/settings/users/")
    expect(usage).to_contain_text("3 of 3 licensed seats in use")
    expect(usage).to_contain_text("1 reserved by pending invitations")
    pending = page.locator("table.invitations tr[data-invitation]")
    expect(pending).to_have_count(1)
    expect(pending.first).to_have_attribute("data-invitation", FIRST)
    expect(pending.first).to_contain_text("Licensed")
    screenshot(page, "first-invited")
    invitation = Invitation.objects.get(account=account)
    assert (invitation.email, invitation.with_seat, invitation.status) == (FIRST, True, "pending")
    assert [m.to for m in mail.outbox] == [[FIRST]]

    # Second invitation with a seat: refused, says why and what to do.
    response = _invite(page, SECOND)
    assert response.status == 400
    # The refusal is shown under the seat checkbox that asked for the seat.
    error = page.locator("form.invite-form .errorlist")
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile(r"\b3 of 3\b"))
    expect(error).to_contain_text("Add seats")
    expect(page.locator(".msg-success")).to_have_count(0)
    expect(usage).to_contain_text("3 of 3 licensed seats in use")
    expect(pending).to_have_count(1)
    # What was typed is kept, so the owner can untick the seat and send again.
    expect(page.locator("form.invite-form").get_by_label("Email address")).to_have_value(SECOND)
    screenshot(page, "second-refused")
    assert list(Invitation.objects.filter(account=account).values_list("email", flat=True)) == [
        FIRST
    ]
    assert not Invitation.objects.filter(email__iexact=SECOND).exists()
    assert len(mail.outbox) == 1
    assert seat_usage(account=account, now=timezone.now()).used == 3
