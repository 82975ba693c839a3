"""The staff console: every marketplace list opens, reviews and payouts go through the
services, webhooks are replayed; and the demo loads twice."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import AuditEvent
from marketplace.models import App, DeveloperPayout, Earning, Installation, Plan, WebhookDelivery
from tests.accounts.test_hardening import staff_client

from .conftest import plan_of

pytestmark = pytest.mark.django_db

LISTS = [
    "developer",
    "app",
    "plan",
    "installation",
    "appusage",
    "webhookdelivery",
    "earning",
    "developerpayout",
]


@pytest.mark.parametrize("model", LISTS)
def test_administrators_open_every_list(client, model, make_app, owner, account):
    from marketplace import services

    app = make_app("calendar", "free")
    services.installation_install(actor=owner, account=account, app=app, plan=plan_of(app))
    staff_client(client, group="Administrator")
    response = client.get(reverse(f"admin:marketplace_{model}_changelist"))
    assert response.status_code == 200
    assert (
        client.get(reverse(f"admin:marketplace_{model}_changelist") + "?q=calendar").status_code
        == 200
    )


def test_review_and_publish_through_the_console(client, developer):
    staff_client(client, group="Administrator")
    app = App.objects.create(
        developer=developer, slug="new", name="New", summary="s", category="ai"
    )
    Plan.objects.create(app=app, code="free", name="Free", pricing_model="free")
    url = reverse("admin:marketplace_app_changelist")
    for action in ("submit", "publish"):
        client.post(url, {"action": action, "_selected_action": [app.pk]})
    app.refresh_from_db()
    assert app.status == "published" and app.published_at is not None
    assert AuditEvent.objects.filter(action="app.published").exists()
    client.post(
        url, {"action": "submit", "_selected_action": [app.pk]}
    )  # published -> in review: refused
    app.refresh_from_db()
    assert app.status == "published"


def test_a_plan_saved_in_the_console_is_sold_through_billing(client, developer):
    staff_client(client, group="Administrator")
    app = App.objects.create(
        developer=developer, slug="new", name="New", summary="s", category="ai"
    )
    response = client.post(
        reverse("admin:marketplace_plan_add"),
        {
            "app": app.pk,
            "code": "monthly",
            "name": "Monthly",
            "pricing_model": "subscription",
            "currency": "USD",
            "amount": "15",
            "interval": "month",
            "scheme": "flat",
            "trial_days": "7",
            "refund_days": "",
            "unit_name": "",
            "default_cap": "",
            "external_url": "",
            "external_refund_contact": "",
            "requires_edition": "",
            "is_active": "on",
            "position": "0",
        },
    )
    assert response.status_code == 302, response.content[:500]
    plan = Plan.objects.get(app=app)
    assert plan.product.kind == "app_subscription"
    assert plan.product.prices.get(is_active=True).amount == Decimal("15")


def test_payout_recorded_once_with_its_reference(client, make_app, owner, account, pay):
    from datetime import timedelta

    import time_machine

    from marketplace import services

    from .conftest import DAY_ONE

    app = make_app("digest", "subscription", "30")
    with time_machine.travel(DAY_ONE, tick=False):
        order = services.installation_install(
            actor=owner, account=account, app=app, plan=plan_of(app)
        ).order
        pay(order, DAY_ONE)
    with time_machine.travel(DAY_ONE + timedelta(days=5), tick=False):
        services.earnings_release()
        staff_client(client, group="Billing reviewer")
        form = {
            "developer": app.developer.pk,
            "month": "2026-03-15",
            "currency": "USD",
            "reference": "BANK-77",
        }
        response = client.post(reverse("admin:marketplace_developerpayout_add"), form)
        assert response.status_code == 302
        payout = DeveloperPayout.objects.get()
        assert (payout.amount, payout.reference) == (Decimal("24.0000"), "BANK-77")
        assert Earning.objects.get().status == "paid"
        client.post(reverse("admin:marketplace_developerpayout_add"), form)
        assert DeveloperPayout.objects.count() == 1
        page = client.get(
            reverse("admin:marketplace_developer_change", args=[app.developer.pk])
        ).text
        assert "March 2026: USD: gross 30.00, fee 6.00, net 24.00" in page


def test_replay_a_delivery_from_the_console(
    client, make_app, owner, account, monkeypatch, django_capture_on_commit_callbacks
):
    from marketplace import services, tasks

    app = make_app("calendar", "free", webhook_url="https://dev.example/hooks")
    sent = []
    monkeypatch.setattr(tasks, "post", lambda url, **kw: sent.append(url) or (200, "ok"))
    with django_capture_on_commit_callbacks(execute=True):
        services.installation_install(actor=owner, account=account, app=app, plan=plan_of(app))
    staff_client(client, group="Billing reviewer")
    delivery = WebhookDelivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:marketplace_webhookdelivery_changelist"),
            {"action": "replay", "_selected_action": [delivery.pk]},
        )
    assert sent == ["https://dev.example/hooks"] * 2
    assert AuditEvent.objects.filter(action="webhook.replayed").exists()


def test_demo_marketplace_loads_twice(settings):
    settings.DEBUG = True
    call_command("demo_data")
    call_command("demo_billing")
    call_command("demo_marketplace")
    apps, installs = App.objects.count(), Installation.objects.count()
    call_command("demo_marketplace")
    assert (App.objects.count(), Installation.objects.count()) == (apps, installs)
    assert apps >= 8
    models = set(Plan.objects.values_list("pricing_model", flat=True))
    assert models == {"free", "subscription", "one_time", "usage", "external"}
    states = dict(Installation.objects.values_list("app__slug", "state"))
    assert states["aurora-assistant"] == "trialing" and states["deal-digest"] == "active"
    assert Installation.objects.get(app__slug="sms-bridge").usage_amount > 0
    from billing.models import OrderLine

    assert OrderLine.objects.filter(kind="app_usage").count() >= 2
