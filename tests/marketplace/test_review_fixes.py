"""Edges a review found: lifetime licences bought once, first purchases only once, plan
moves undone, earnings reversed at the rate earned, usage billed at the price used."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from accounts.errors import PortalError
from billing import services as billing
from billing.models import Order, Price, Product, Subscription
from marketplace import services
from marketplace.models import Earning, Installation, WebhookDelivery

from .conftest import DAY_ONE, plan_of

pytestmark = pytest.mark.django_db


def _install(owner, account, app, plan=None, **kw):
    return services.installation_install(
        actor=owner, account=account, app=app, plan=plan or plan_of(app), **kw
    )


def test_a_lifetime_licence_is_bought_once_and_survives_an_uninstall(owner, account, make_app, pay):
    app = make_app("org-chart", "one_time", "49")
    with time_machine.travel(DAY_ONE, tick=False):
        pay(_install(owner, account, app).order, DAY_ONE)
        inst = Installation.objects.get(app=app)
        with pytest.raises(PortalError, match="nothing to cancel"):
            services.installation_cancel(actor=owner, installation=inst)
        assert Installation.objects.get(pk=inst.pk).state == "active"
        services.installation_cancel(actor=owner, installation=inst, uninstall=True)
        again = _install(owner, account, app)
    assert again.order is None and again.installation.state == "active"
    assert again.installation.licence_line_id == inst.licence_line_id
    assert Order.objects.filter(account=account).count() == 1
    with pytest.raises(PortalError, match="already holds a lifetime licence"):
        billing.app_licence_buy(actor=owner, account=account, product=plan_of(app).product)


def test_installing_again_is_not_a_first_purchase(owner, account, make_app, pay, staff):
    app = make_app("digest", "subscription", "30")
    with time_machine.travel(DAY_ONE, tick=False):
        first = _install(owner, account, app)
        pay(first.order, DAY_ONE)
        assert first.order.lines.get().first_purchase is True
        services.installation_cancel(actor=owner, installation=first.installation)
    Subscription.objects.filter(pk=first.installation.subscription_id).update(status="cancelled")
    Installation.objects.filter(pk=first.installation.pk).update(state="cancelled")
    with time_machine.travel(DAY_ONE + timedelta(days=40), tick=False):
        again = _install(owner, account, app)
        line = again.order.lines.get()
        assert line.first_purchase is False  # §4: the initial purchase only
        pay(again.order, DAY_ONE + timedelta(days=40))
        assert (
            services.refund_offer(Installation.objects.get(pk=again.installation.pk))["outcome"]
            == "none"
        )


def test_a_paid_install_after_a_used_trial_is_not_refundable(owner, account, make_app):
    app = make_app("notes", "subscription", "30", trial_days=7)
    with time_machine.travel(DAY_ONE, tick=False):
        inst = _install(owner, account, app).installation
        services.installation_cancel(actor=owner, installation=inst, uninstall=True)
        again = _install(owner, account, app)
    assert again.installation.state == "pending"
    assert again.order.lines.get().first_purchase is False


def test_a_planned_move_can_be_undone_and_a_cancelled_one_cannot_move(
    owner, account, make_app, add_plan, pay
):
    app = make_app("digest", "subscription", "30")
    yearly = add_plan(app)
    main = app.plans.get(code="main")
    with time_machine.travel(DAY_ONE, tick=False):
        out = _install(owner, account, app, plan=main)
        pay(out.order, DAY_ONE)
        inst = Installation.objects.get(pk=out.installation.pk)
        services.installation_change_plan(actor=owner, installation=inst, plan=yearly)
        undone = services.installation_change_plan(actor=owner, installation=inst, plan=main)
        assert "undone" in undone.message
        sub = Subscription.objects.get(pk=inst.subscription_id)
        assert (
            sub.pending_price is None and Installation.objects.get(pk=inst.pk).pending_plan is None
        )
        services.installation_cancel(actor=owner, installation=inst)
        with pytest.raises(PortalError, match="cancelled and ends on 1 April 2026"):
            services.installation_change_plan(actor=owner, installation=inst, plan=yearly)
    assert Subscription.objects.get(pk=inst.subscription_id).cancel_at_period_end is True


def test_a_renewals_small_correction_does_not_end_the_app(owner, account, make_app, pay, staff):
    app = make_app("digest", "subscription", "30")
    with time_machine.travel(DAY_ONE, tick=False):
        pay(_install(owner, account, app).order, DAY_ONE)
    renewal = DAY_ONE + timedelta(days=31)
    with time_machine.travel(renewal, tick=False):
        billing.subscriptions_renew_due()
        order = pay(Order.objects.get(account=account, status="awaiting_payment"), renewal)
        line = order.lines.get()
        billing.refund_record(
            actor=staff,
            account=account,
            method="credit",
            amounts={line.pk: 1},
            reference="RR-C",
            key="c1",
        )
        billing.refund_take_back(actor=staff, account=account, line_ids=[line.pk], reference="RR-C")
    assert Installation.objects.get(app=app).state == "active"


def test_a_reversal_uses_the_rate_earned_and_waits_with_its_share(
    owner, account, make_app, pay, staff
):
    app = make_app("digest", "subscription", "30")
    with time_machine.travel(DAY_ONE, tick=False):
        order = pay(_install(owner, account, app).order, DAY_ONE)
        app.developer.revenue_share = Decimal("0.50")
        app.developer.save()
        line = order.lines.get()
        billing.refund_record(
            actor=staff,
            account=account,
            method="credit",
            amounts={line.pk: 30},
            reference="RR-F",
            key="f1",
        )
    reversal = Earning.objects.get(refund__isnull=False)
    assert (reversal.gross, reversal.net, reversal.status) == (-30, -24, "held")
    with time_machine.travel(DAY_ONE + timedelta(days=5), tick=False):
        assert services.earnings_release() == 2
    assert sum(e.net for e in Earning.objects.all()) == 0


def test_usage_is_billed_at_the_price_it_was_used_at(owner, account, make_app, pay, staff):
    app = make_app("sms", "usage", "0.05")
    with time_machine.travel(DAY_ONE, tick=False):
        inst = _install(owner, account, app, usage_cap="10.00").installation
        services.usage_report(app=app, installation_id=inst.pk, quantity=200, idempotency_key="a")
        plan = plan_of(app)
        plan.amount = Decimal("0.50")  # a tenfold price rise later in the month
        plan.save()
        services.plan_product_sync(actor=staff, plan=plan)
        assert Price.objects.filter(product=plan.product, is_active=True).get().amount == Decimal(
            "0.50"
        )
    with time_machine.travel(DAY_ONE + timedelta(days=30), tick=False):
        order = billing.usage_bill(account=account)
    assert order.total == Decimal("10.00")  # 200 x 0.05, within the 10.00 cap


def test_the_wordpress_app_works_only_with_its_licence(
    owner, account, make_app, api_client, billing_staff
):
    licence = Product.objects.create(code="wp", name="WordPress portal licence", kind="plugin")
    wp_price = Price.objects.create(
        product=licence, currency="USD", amount=Decimal("295"), interval="one_off"
    )
    app = make_app("wordpress", "free", requires_product=licence)
    _install(owner, account, app)
    api_client.force_authenticate(owner)
    row = api_client.get(f"/api/v1/accounts/{account.pk}/entitlements/").json()["apps"][0]
    assert row["works"] is False and "licence" in row["reason"]
    order = billing.purchase_place(actor=owner, account=account, items=[{"price": wp_price.pk}])
    billing.payment_record_manual(actor=billing_staff, order=order, reference="W")
    row = api_client.get(f"/api/v1/accounts/{account.pk}/entitlements/").json()["apps"][0]
    assert row["works"] is True and row["reason"] is None


def test_developers_hear_when_a_renewal_goes_unpaid(owner, account, make_app, pay, monkeypatch):
    app = make_app("digest", "subscription", "30", webhook_url="https://dev.example/h")
    with time_machine.travel(DAY_ONE, tick=False):
        pay(_install(owner, account, app).order, DAY_ONE)
    with time_machine.travel(DAY_ONE + timedelta(days=31), tick=False):
        billing.subscriptions_renew_due()
    assert Installation.objects.get(app=app).state == "suspended"
    assert WebhookDelivery.objects.filter(event="installation.suspended").exists()


def test_odd_seats_and_unsold_plans_are_refused_cleanly(
    owner, account, make_app, add_plan, developer
):
    from django.test import Client

    make_app("digest", "subscription", "30", scheme="per_seat")
    client = Client()
    client.force_login(owner)
    client.get("/")
    response = client.post(
        "/marketplace/apps/digest/install/",
        {"plan": "main", "quantity": "²", "account_id": account.pk},
        follow=True,
    )
    assert response.status_code == 200 and "whole number of seats" in response.text
    app = make_app("unsold", "free")
    unsold = add_plan(app, code="paid", name="Paid", model="one_time", amount="5", sync=False)
    with pytest.raises(PortalError, match="not for sale yet"):
        _install(owner, account, app, plan=unsold)


def test_a_suspended_developers_key_stops_working(api_client, make_app, staff, owner, account):
    app = make_app("sms", "usage", "0.05")
    secret = services.app_api_key_rotate(actor=staff, app=app)
    inst = _install(owner, account, app).installation
    url = f"/api/v1/developer/installations/{inst.pk}/"
    assert api_client.get(url, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    app.developer.status = "suspended"
    app.developer.save()
    assert api_client.get(url, headers={"Authorization": f"Bearer {secret}"}).status_code == 401
