"""The Marketplace pages as a customer uses them, and their query counts as apps grow."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from billing.models import Order
from marketplace.models import App, Installation, Plan
from tests.factories import MembershipFactory

from .conftest import DAY_ONE

pytestmark = pytest.mark.django_db


def signed_in(user):
    client = Client()
    client.force_login(user)
    client.get("/")
    return client


def grow_apps(developer, count, start=0):
    apps = App.objects.bulk_create(
        [
            App(
                developer=developer,
                slug=f"bulk-{n}",
                name=f"Bulk app {n}",
                summary="Filler",
                category="productivity",
                status="published",
                search_text=f"bulk app {n} filler",
            )
            for n in range(start, start + count)
        ]
    )
    Plan.objects.bulk_create(
        [Plan(app=app, code="free", name="Free", pricing_model="free") for app in apps]
    )


def test_browse_search_and_filter(owner, make_app):
    make_app("sms-bridge", "usage", "0.05", category="communication")
    make_app("deal-digest", "subscription", "12", category="sales")
    make_app("hidden", "free", publish=False)
    client = signed_in(owner)
    page = client.get("/marketplace/")
    assert page.status_code == 200
    assert "Sms Bridge" in page.text and "Deal Digest" in page.text and "Hidden" not in page.text
    assert 'href="/marketplace/"' in client.get("/settings/profile/").text  # in the top bar
    assert "Deal Digest" not in client.get("/marketplace/?q=sms").text
    assert "Sms Bridge" not in client.get("/marketplace/?category=sales").text
    assert "Deal Digest" not in client.get("/marketplace/?pricing_model=usage").text


def test_app_page_shows_plans_scopes_and_refund_terms(owner, make_app):
    make_app("notes", "subscription", "30", trial_days=14, scopes=("deals:write",))
    make_app("digest", "subscription", "12")
    client = signed_in(owner)
    page = client.get("/marketplace/apps/notes/").text
    assert "deals:write" in page
    assert "No refunds once the paid cycle after your trial begins" in page
    assert "Start the 14-day free trial" in page
    assert (
        "Cancel within 3 days of your first payment for a prorated refund"
        in client.get("/marketplace/apps/digest/").text
    )
    assert client.get("/marketplace/apps/nope/").status_code == 404


def test_trial_from_the_page_then_cancel_with_confirmation(owner, account, make_app):
    app = make_app("notes", "subscription", "30", trial_days=14)
    client = signed_in(owner)
    with time_machine.travel(DAY_ONE, tick=False):
        response = client.post(
            "/marketplace/apps/notes/install/",
            {"plan": "main", "account_id": account.pk},
            follow=True,
        )
        assert "runs until March 15, 2026" in response.text
        assert "last day is <strong>March 15, 2026</strong>" in response.text
        unconfirmed = client.post(
            "/marketplace/apps/notes/cancel/", {"account_id": account.pk}, follow=True
        )
        assert "Tick the box" in unconfirmed.text
        assert Installation.objects.get(app=app).state == "trialing"
        done = client.post(
            "/marketplace/apps/notes/cancel/",
            {"confirm": "1", "account_id": account.pk},
            follow=True,
        )
        assert "nothing is charged" in done.text
    assert Installation.objects.get(app=app).state == "cancelled"
    assert not Order.objects.filter(account=account).exists()


def test_paid_app_page_offers_the_engines_refund(owner, account, make_app, pay):
    make_app("digest", "subscription", "31")
    client = signed_in(owner)
    with time_machine.travel(DAY_ONE, tick=False):
        response = client.post(
            "/marketplace/apps/digest/install/", {"plan": "main", "account_id": account.pk}
        )
        assert response.status_code == 302 and response["Location"].startswith("/settings/billing/")
        order = pay(Order.objects.get(account=account), DAY_ONE)
    with time_machine.travel(DAY_ONE + timedelta(days=1), tick=False):
        page = client.get("/marketplace/apps/digest/").text
        assert "Paid through April 1, 2026; it renews the day after." in page
        assert "Ask by March 5, 2026." in page
        assert "30.00 USD" in page  # 30 of 31 days unused
        assert f"/settings/billing/orders/{order.pk}/refund/" in page


def test_members_see_installed_apps_but_no_install_button(account, make_app, owner):
    from marketplace import services

    app = make_app("calendar", "free")
    services.installation_install(actor=owner, account=account, app=app, plan=app.plans.get())
    member = MembershipFactory(account=account, role="member").user
    client = signed_in(member)
    assert "Calendar" in client.get("/marketplace/").text
    page = client.get("/marketplace/apps/calendar/").text
    assert "Owners and billing admins install apps." in page or "Uninstall" not in page
    refused = client.post(
        "/marketplace/apps/calendar/cancel/",
        {"confirm": "1", "account_id": account.pk},
        follow=True,
    )
    assert "Only owners and billing admins" in refused.text


@pytest.mark.parametrize(
    "path", ["/marketplace/", "/api/v1/marketplace/apps/", "/marketplace/apps/sms-bridge/"]
)
def test_listing_and_app_page_queries_do_not_grow_with_apps(
    owner, developer, make_app, path, django_assert_num_queries, django_assert_max_num_queries
):
    make_app("sms-bridge", "usage", "0.05")
    grow_apps(developer, 9)
    client = (APIClient if path.startswith("/api/") else Client)()
    client.force_login(owner)
    client.get("/")
    with django_assert_max_num_queries(20) as small:
        assert client.get(path).status_code == 200
    grow_apps(developer, 490, start=9)
    with django_assert_num_queries(len(small)):
        assert client.get(path).status_code == 200


def test_a_usage_charge_can_be_disputed_for_three_days(owner, account, make_app, pay):
    from billing.services import usage_bill
    from marketplace import services

    app = make_app("sms", "usage", "0.05", unit_name="message")
    with time_machine.travel(DAY_ONE, tick=False):
        inst = services.installation_install(
            actor=owner, account=account, app=app, plan=app.plans.get()
        ).installation
        services.usage_report(app=app, installation_id=inst.pk, quantity=2, idempotency_key="a")
    charged = DAY_ONE + timedelta(days=30)
    with time_machine.travel(charged, tick=False):
        order = pay(usage_bill(account=account), charged)
    client = signed_in(owner)
    with time_machine.travel(charged + timedelta(days=3), tick=False):
        page = client.get("/marketplace/apps/sms/").text
        assert (
            f'href="/settings/billing/orders/{order.pk}/refund/" data-testid="report-billing-error"'
            in page
        )
        assert "2 messages" in page or "0 messages" in page
    with time_machine.travel(charged + timedelta(days=4), tick=False):
        assert "report-billing-error" not in client.get("/marketplace/apps/sms/").text


def test_emptying_the_cap_removes_it_and_says_so(owner, account, make_app):
    from marketplace import services

    app = make_app("sms", "usage", "0.05", default_cap=Decimal("50"))
    inst = services.installation_install(
        actor=owner, account=account, app=app, plan=app.plans.get()
    ).installation
    assert inst.usage_cap == 50  # the plan's default on install
    client = signed_in(owner)
    response = client.post(
        "/marketplace/apps/sms/change/", {"usage_cap": "", "account_id": account.pk}, follow=True
    )
    assert "The monthly cap is removed" in response.text
    inst.refresh_from_db()
    assert inst.usage_cap is None


def test_the_api_gives_the_trials_last_day_and_the_refund_window(
    api_client, owner, account, make_app
):
    from marketplace import services

    trial = make_app("notes", "subscription", "30", trial_days=14)
    make_app("digest", "subscription", "30", refund_days=10)
    with time_machine.travel(DAY_ONE, tick=False):
        inst = services.installation_install(
            actor=owner, account=account, app=trial, plan=trial.plans.get()
        ).installation
    api_client.force_authenticate(owner)
    data = api_client.get(f"/api/v1/accounts/{account.pk}/installations/{inst.pk}/").json()
    assert (data["trial_end"], data["trial_last_day"]) == ("2026-03-16", "2026-03-15")
    apps = {a["slug"]: a for a in api_client.get("/api/v1/marketplace/apps/").json()["results"]}
    assert (apps["notes"]["trial_days"], apps["notes"]["refund_days"]) == (14, 0)
    assert apps["digest"]["refund_days"] == 10


def test_cancelling_an_unpaid_lifetime_licence_withdraws_its_order(owner, account, make_app):
    from marketplace import services

    app = make_app("org-chart", "one_time", "49")
    outcome = services.installation_install(
        actor=owner, account=account, app=app, plan=app.plans.get()
    )
    assert outcome.installation.state == "pending"
    done = services.installation_cancel(actor=owner, installation=outcome.installation)
    assert "unpaid order withdrawn" in done.message
    outcome.order.refresh_from_db()
    assert outcome.order.status == "cancelled"
    assert Installation.objects.get(pk=outcome.installation.pk).state == "cancelled"


def test_a_delisted_app_stays_visible_to_the_accounts_that_have_it(owner, account, make_app, staff):
    from marketplace import services
    from tests.factories import AccountFactory, owner_of

    app = make_app("calendar", "free")
    services.installation_install(actor=owner, account=account, app=app, plan=app.plans.get())
    services.app_set_status(actor=staff, app=app, status="delisted")
    page = signed_in(owner).get("/marketplace/apps/calendar/")
    assert page.status_code == 200 and "no longer on the marketplace" in page.text
    listing = signed_in(owner).get("/marketplace/").text
    assert 'data-testid="app-calendar"' not in listing  # not offered any more
    assert 'data-testid="installed-calendar"' in listing  # but still installed
    stranger = owner_of(AccountFactory())
    assert signed_in(stranger).get("/marketplace/apps/calendar/").status_code == 404
