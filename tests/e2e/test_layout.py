"""Browser: the customer pages fit a 360 px phone and a 1280 px screen as every demo
login sees them, the top bar's menu works on a phone, and axe-core finds no critical
or serious accessibility violation on the customer pages or the staff console."""

import os
from pathlib import Path

import pytest
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.admin import site as admin_site
from django.test import Client, RequestFactory
from django.urls import reverse
from playwright.sync_api import expect

from accounts.errors import PortalError
from accounts.middleware import SESSION_ACCOUNT_KEY
from accounts.models import Account, Membership, User
from billing.models import Order
from refunds.models import RefundRequest
from support import services as support_services
from support.models import Incident
from tests.e2e.test_content_security_policy import demo  # noqa: F401

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
DEMO_LOGINS = (
    "owner@acme.example",
    "billing@acme.example",
    "member@acme.example",
    "owner@globex.example",
    "owner@initech.example",
)


def _context(browser, live_server, user, *, viewport, account=None):
    """A browser context signed in as user, working in account (their first by default)."""
    client = Client()
    client.force_login(user)
    if account is not None:
        session = client.session
        session[SESSION_ACCOUNT_KEY] = account.pk
        session.save()
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    return context


def _incident_of(account):
    incident = Incident.objects.filter(account=account).order_by("pk").first()
    if incident is not None:
        return incident
    contact = Membership.objects.filter(account=account, is_support_contact=True).first()
    if contact is None:
        return None
    try:
        return support_services.incident_open(
            actor=contact.user,
            account=account,
            subject="The export stops at 10,000 rows",
            description="Exports of the contact list stop at 10,000 rows since Monday.",
            severity=Incident.Severity.P3,
        )
    except PortalError:  # the account has no support to open one in
        return None


def customer_paths(account):
    """Every customer page of the account: the main journeys, one object of each kind."""
    paths = [
        reverse("dashboard"),
        reverse("settings_profile"),
        reverse("settings_users"),
        reverse("settings_billing"),
        reverse("billing_details"),
        reverse("support_home"),
        reverse("marketplace"),
        reverse("marketplace_app", args=["aurora-assistant"]),
    ]
    refund = RefundRequest.objects.filter(account=account).order_by("pk").first()
    if refund is not None:
        paths.append(reverse("refund_request_detail", args=[refund.number]))
    order = Order.objects.filter(account=account, status=Order.Status.PAID).order_by("pk").first()
    if order is not None:
        paths.append(reverse("refund_request_new", args=[order.pk]))
    incident = _incident_of(account)
    if incident is not None:
        paths.append(reverse("incident_detail", args=[incident.number]))
    return paths


def _visit(page, path):
    response = page.goto(path)
    assert response.status < 500, f"{path} answered {response.status}"
    expect(page.locator("main").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    return response


def _overflow(page):
    """The page's width beyond the window's, and the widest elements that cause it."""
    return page.evaluate(
        """() => {
          const width = window.innerWidth;
          const wide = [...document.querySelectorAll("body *")]
            .filter((el) => el.getBoundingClientRect().right > width + 0.5)
            .slice(0, 5)
            .map((el) => `${el.tagName.toLowerCase()}.${el.className}`);
          return {scroll: document.documentElement.scrollWidth, width, wide};
        }"""
    )


def _sessions(browser, live_server, viewport):
    """(label, context, paths) for every demo login in every account it belongs to."""
    for email in DEMO_LOGINS:
        user = User.objects.get(email=email)
        for membership in Membership.objects.filter(user=user, is_active=True).select_related(
            "account"
        ):
            account = membership.account
            context = _context(browser, live_server, user, viewport=viewport, account=account)
            yield f"{email} in {account.name}", context, customer_paths(account)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_no_customer_page_scrolls_sideways(browser, demo, live_server, viewport):  # noqa: F811
    too_wide = []
    seen = 0
    for label, context, paths in _sessions(browser, live_server, viewport):
        try:
            page = context.new_page()
            for path in paths:
                _visit(page, path)
                seen += 1
                found = _overflow(page)
                if found["scroll"] > found["width"]:
                    too_wide.append(f"{label} {path}: {found}")
        finally:
            context.close()
    assert seen > 50, seen
    assert not too_wide, "\n".join(too_wide)


def test_the_menu_opens_and_its_links_work_on_a_phone(browser, demo, live_server):  # noqa: F811
    # Signed out, the two links need no menu.
    anonymous = browser.new_context(base_url=live_server.url, viewport=PHONE)
    try:
        page = anonymous.new_page()
        _visit(page, "/accounts/login/")
        expect(page.get_by_role("button", name="Menu")).to_have_count(0)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign up").click()
        expect(page.get_by_role("heading", name="Sign Up")).to_be_visible()
    finally:
        anonymous.close()
    user = User.objects.get(email="owner@acme.example")
    context = _context(browser, live_server, user, viewport=PHONE)
    try:
        page = context.new_page()
        _visit(page, "/")
        toggle = page.get_by_role("button", name="Menu")
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(page.get_by_role("link", name="Support")).to_be_hidden()
        for name, heading in (
            ("Support", "Support"),
            ("Marketplace", "Marketplace"),
            ("Account Settings", "Account Settings"),
        ):
            page.get_by_role("button", name="Menu").click()
            expect(page.get_by_role("button", name="Menu")).to_have_attribute(
                "aria-expanded", "true"
            )
            link = page.get_by_role("navigation", name="Main").get_by_role("link", name=name)
            expect(link).to_be_visible()
            box = link.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
            link.click()
            expect(page.get_by_role("heading", name=heading).first).to_be_visible()
            # A new page starts with the menu closed.
            expect(page.get_by_role("button", name="Menu")).to_have_attribute(
                "aria-expanded", "false"
            )
        # Escape closes an open menu and gives the focus back to its button.
        page.get_by_role("button", name="Menu").click()
        page.keyboard.press("Escape")
        expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "false")
        expect(page.get_by_role("button", name="Menu")).to_be_focused()
        # Sign out from the menu.
        page.get_by_role("button", name="Menu").click()
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Sign In")).to_be_visible()
    finally:
        context.close()


def test_without_javascript_the_menu_is_a_plain_list(browser, demo, live_server):  # noqa: F811
    user = User.objects.get(email="owner@acme.example")
    client = Client()
    client.force_login(user)
    context = browser.new_context(
        base_url=live_server.url, viewport=PHONE, java_script_enabled=False
    )
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    try:
        page = context.new_page()
        _visit(page, reverse("settings_users"))
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        for name in ("Marketplace", "Support", "Account Settings"):
            expect(page.get_by_role("link", name=name).first).to_be_visible()
        found = _overflow(page)
        assert found["scroll"] <= found["width"], found
    finally:
        context.close()


def test_tables_become_labelled_rows_on_a_phone(browser, demo, live_server):  # noqa: F811
    user = User.objects.get(email="owner@acme.example")
    context = _context(browser, live_server, user, viewport=PHONE)
    try:
        page = context.new_page()
        _visit(page, reverse("settings_users"))
        table = page.locator("main table").first
        headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
        assert headers and all(headers), headers
        first_row = table.locator("tbody tr").first
        cells = first_row.locator("td")
        labels = [cells.nth(i).get_attribute("data-label") for i in range(cells.count())]
        assert labels == headers[: len(labels)], (labels, headers)
        # Stacked: the row's cells sit one below the other.
        boxes = [cells.nth(i).bounding_box() for i in range(min(2, cells.count()))]
        assert boxes[1]["y"] >= boxes[0]["y"] + boxes[0]["height"] - 1, boxes
        # On a wide screen the same table is a table.
        page.set_viewport_size(DESKTOP)
        boxes = [cells.nth(i).bounding_box() for i in range(2)]
        assert boxes[1]["y"] == boxes[0]["y"], boxes
    finally:
        context.close()


# axe-core's rules at these impacts block or seriously hinder someone using the page.
BLOCKING = ("critical", "serious")


def _staff_paths(*, acme, admin):
    """The console's home, every model's list, and the pages staff work in."""
    refund = RefundRequest.objects.filter(account=acme).order_by("pk").first()
    paths = [reverse("admin:index")]
    for model, model_admin in admin_site._registry.items():
        if model_admin.has_view_permission(_request_as(admin)):
            meta = model._meta
            paths.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    return [
        *paths,
        reverse("admin:accounts_account_change", args=[acme.pk]),
        reverse("admin:accounts_user_change", args=[admin.pk]),
        reverse("admin:billing_ledgerentry_add"),
        reverse("admin:refunds_refundrequest_change", args=[refund.pk]),
        reverse("admin:marketplace_plan_add"),
    ]


def _request_as(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


@pytest.fixture
def axe():
    if not AXE.exists():
        reason = f"axe-core is not installed at {AXE} (npm ci, which `make install` runs)."
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    source = AXE.read_text()

    def check(page):
        """The page's critical and serious violations, one line per rule and element."""
        # Evaluated through the debugging protocol: the page's CSP would refuse an inline tag.
        page.evaluate(source + "\n;undefined")
        results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        found = []
        for violation in results["violations"]:
            if violation["impact"] not in BLOCKING:
                continue
            for node in violation["nodes"]:
                found.append(
                    f"{page.url} {violation['impact']} {violation['id']}: "
                    f"{' '.join(node['target'])} ({violation['help']})"
                )
        return found

    return check


def test_axe_sees_a_serious_violation(page, live_server, transactional_db, axe):
    _visit(page, "/accounts/login/")
    assert not axe(page)
    page.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend', '<button></button>')"
    )
    found = axe(page)
    assert any("critical button-name" in line for line in found), found


def test_axe_finds_nothing_serious_on_the_customer_pages(browser, demo, live_server, axe):  # noqa: F811
    found = []
    for viewport in (PHONE, DESKTOP):
        for _label, context, paths in _sessions(browser, live_server, viewport):
            try:
                page = context.new_page()
                for path in paths:
                    _visit(page, path)
                    found += axe(page)
            finally:
                context.close()
    # The phone's menu, open.
    owner = User.objects.get(email="owner@acme.example")
    context = _context(browser, live_server, owner, viewport=PHONE)
    try:
        page = context.new_page()
        _visit(page, "/")
        page.get_by_role("button", name="Menu").click()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        found += axe(page)
    finally:
        context.close()
    anonymous = browser.new_context(base_url=live_server.url, viewport=PHONE)
    try:
        page = anonymous.new_page()
        for path in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
            _visit(page, path)
            found += axe(page)
    finally:
        anonymous.close()
    assert not found, "\n".join(sorted(set(found)))


def test_axe_finds_nothing_serious_on_the_staff_console(browser, demo, live_server, axe):  # noqa: F811
    admin = User.objects.get(email="admin@example.com")
    # The console asks staff for a second factor; the one the existing console tests use.
    Authenticator.objects.create(user=admin, type=Authenticator.Type.TOTP, data={"secret": "x"})
    found = []
    context = _context(browser, live_server, admin, viewport=DESKTOP)
    try:
        page = context.new_page()
        for path in _staff_paths(acme=Account.objects.get(name="Acme Corporation"), admin=admin):
            response = page.goto(path)
            assert response.status < 400, f"{path} answered {response.status}"
            page.wait_for_load_state("networkidle")
            found += axe(page)
    finally:
        context.close()
    assert not found, "\n".join(sorted(set(found)))
