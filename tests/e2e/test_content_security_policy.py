"""Browser: customer pages, the staff console and the API docs work under the
Content-Security-Policy, and the browser reports no violation on any of them."""

import io

import pytest
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import Account, User
from marketplace.models import Plan
from refunds.models import RefundRequest
from tests.factories import PASSWORD, AccountFactory, owner_of

pytestmark = pytest.mark.browser
DEMO_PASSWORD = "demo-portal-2026"

# Records the violations a page reports, before any of its own scripts run.
WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@pytest.fixture
def demo(settings, transactional_db):
    """The demo portal of `make run` (its commands refuse to run with DEBUG off)."""
    settings.DEBUG = True
    for command in (
        "demo_data",
        "demo_billing",
        "demo_refunds",
        "demo_marketplace",
        "demo_support",
    ):
        call_command(command, stdout=io.StringIO())
    settings.DEBUG = False


class Watched:
    """A browser page that gathers the CSP violations reported by every page it shows,
    both as `securitypolicyviolation` events and as console messages."""

    def __init__(self, page):
        self.page = page
        self.violations = []
        page.add_init_script(WATCH)
        page.on("console", self._console)

    def _console(self, message):
        text = message.text
        if "Content Security Policy" in text or text.startswith("Refused to"):
            self.violations.append(f"{self.page.url}: {text}")

    def visit(self, path, ready="main, #content, body", timeout=5_000):
        response = self.page.goto(path)
        assert response.status < 400, f"{path} answered {response.status}"
        expect(self.page.locator(ready).first).to_be_visible(timeout=timeout)
        self.page.wait_for_load_state("networkidle")
        self.collect()

    def collect(self):
        reported = self.page.evaluate("window.__cspViolations || []")
        self.violations += [f"{self.page.url}: {v}" for v in reported]
        self.page.evaluate("window.__cspViolations = []")


def _signed_in_context(browser, live_server, user):
    client = Client()
    client.force_login(user)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
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


def test_the_watch_sees_a_violation(page, live_server, transactional_db):
    watched = Watched(page)
    watched.visit("/accounts/login/")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')")
    page.wait_for_timeout(200)
    watched.collect()
    assert any("style-src" in v for v in watched.violations), watched.violations


def test_customer_pages_report_no_violation(page, demo, live_server):
    watched = Watched(page)
    watched.visit("/accounts/signup/")
    watched.visit("/accounts/password/reset/")
    watched.visit("/accounts/login/")
    page.get_by_label("Email").fill("owner@acme.example")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("link", name="Account Settings")).to_be_visible()
    watched.collect()

    acme = Account.objects.get(name="Acme Corporation")
    refund = RefundRequest.objects.get(account=acme, state="credited")
    order = refund.lines.first().order_line.order
    for path in (
        "/",
        "/settings/profile/",
        "/settings/users/",
        "/settings/billing/",
        "/settings/billing/plan-and-seats/",
        "/settings/billing/add-ons/",
        "/settings/billing/invoices/",
        "/settings/billing/credits/",
        "/settings/billing/refunds/",
        "/settings/billing/details/",
        "/settings/billing/buy/",
        f"/settings/billing/orders/{order.pk}/",
        "/settings/billing/cancel/",
        f"/settings/billing/orders/{order.pk}/refund/",
        f"/settings/billing/refunds/{refund.number}/",
        "/support/",
        "/support/service-levels/",
        "/marketplace/",
        "/marketplace/apps/aurora-assistant/",
        "/marketplace/apps/sms-bridge/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/accounts/2fa/",
        "/accounts/2fa/totp/activate/",
    ):
        watched.visit(path)
    page.goto("/no-such-page/")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    watched.collect()

    # The confirmation an inline onclick used to ask, now asked by static/js/portal.js:
    # declined, nothing is sent; accepted, the form is.
    RefundRequest.objects.filter(pk=refund.pk).update(state="received")
    watched.visit(f"/settings/billing/refunds/{refund.number}/")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Withdraw this request").click()
    assert asked == [f"Withdraw {refund.number}?"]
    refund.refresh_from_db()
    assert refund.state == "received"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Withdraw this request").click()
    expect(page.get_by_role("button", name="Withdraw this request")).to_have_count(0)
    refund.refresh_from_db()
    assert refund.state == "withdrawn"

    # The account switcher, a select that submits its form when it changes.
    watched.visit("/")
    page.locator("#account-switch").select_option(label="Globex GmbH")
    expect(page.locator("#account-switch option:checked")).to_have_text("Globex GmbH")
    watched.collect()
    assert not watched.violations, "\n".join(watched.violations)


def test_installing_an_external_app_reaches_its_developer(page, demo, live_server):
    # The developer's site: another origin than the portal's (localhost), here the portal's own
    # health check at 127.0.0.1. The app's page lets its install form lead there.
    developer_site = live_server.url.replace("localhost", "127.0.0.1") + "/healthz"
    Plan.objects.filter(pricing_model="external").update(external_url=developer_site)
    watched = Watched(page)
    watched.visit("/accounts/login/")
    page.get_by_label("Email").fill("owner@acme.example")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("link", name="Account Settings")).to_be_visible()
    watched.visit("/marketplace/apps/mailchimp-sync/")
    with page.expect_navigation(url=developer_site):
        page.get_by_role("button", name="Install and go to Chimp Connect").click()
    watched.collect()
    assert not watched.violations, "\n".join(watched.violations)


def test_the_payment_method_page_runs_stripe_js(page, live_server, transactional_db, stripe_on):
    # localstripe's stand-in for Stripe.js, from another origin than the portal's; the page
    # allows that origin (and the API it calls) for itself only.
    account = AccountFactory(name="Initech")
    watched = Watched(page)
    watched.visit("/accounts/login/")
    page.get_by_label("Email").fill(owner_of(account).email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("link", name="Account Settings")).to_be_visible()
    watched.visit("/settings/billing/payment-method/")
    expect(page.get_by_test_id("card-element").get_by_placeholder("number")).to_be_visible()
    watched.collect()
    assert not watched.violations, "\n".join(watched.violations)


def test_staff_console_and_api_docs_report_no_violation(browser, demo, live_server):
    admin = User.objects.get(email="admin@example.com")
    Authenticator.objects.create(user=admin, type=Authenticator.Type.TOTP, data={"secret": "x"})
    acme = Account.objects.get(name="Acme Corporation")
    refund = RefundRequest.objects.get(account=acme, state="credited")
    context = _signed_in_context(browser, live_server, admin)
    try:
        page = context.new_page()
        watched = Watched(page)
        for path in (
            reverse("admin:index"),
            reverse("admin:accounts_account_changelist"),
            reverse("admin:accounts_account_change", args=[acme.pk]),
            reverse("admin:accounts_user_change", args=[admin.pk]),
            reverse("admin:accounts_membership_changelist"),
            reverse("admin:accounts_auditevent_changelist"),
            reverse("admin:billing_order_changelist"),
            reverse("admin:billing_product_changelist"),
            reverse("admin:billing_ledgerentry_add"),
            reverse("admin:refunds_refundrequest_changelist"),
            reverse("admin:refunds_refundrequest_change", args=[refund.pk]),
            reverse("admin:refunds_refundsimulation_changelist"),
            reverse("admin:refunds_refundsimulation_changelist") + f"?account={acme.pk}",
            reverse("admin:refunds_report"),
            reverse("admin:inbox_inboundmail_changelist"),
            reverse("admin:support_incident_changelist"),
            reverse("admin:marketplace_app_changelist"),
            reverse("admin:marketplace_plan_add"),
        ):
            watched.visit(path)
        # The refunds report's charts are drawn (Chart.js from static, data by json_script).
        watched.visit(reverse("admin:refunds_report"))
        drawn = "[...document.querySelectorAll('canvas')].filter(c => Chart.getChart(c)).length"
        assert page.evaluate(drawn) == 7
        watched.visit("/api/docs/", ready=".swagger-ui .info")
        page.locator(".opblock-summary").first.click()
        watched.collect()
        # ReDoc fetches and lays out the whole schema (200 KB) before its first heading:
        # more than 5 s on a loaded 2-core machine.
        watched.visit(
            "/api/redoc/", ready="redoc-container h1, #redoc-container h1", timeout=30_000
        )
        assert not watched.violations, "\n".join(watched.violations)
    finally:
        context.close()
