"""A small marketplace: one developer, one app per pricing model, made through the services."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from billing import services as billing
from marketplace import services
from marketplace.models import App, Developer, Plan
from tests.factories import AccountFactory, UserFactory, owner_of

# Monday 2 March 2026, 15:00 UTC (10:00 in New York).
DAY_ONE = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def staff():
    user = UserFactory(is_staff=True, is_superuser=True)
    user.groups.add(Group.objects.get(name="Billing reviewer"))
    return user


@pytest.fixture
def developer():
    return Developer.objects.create(
        name="Aurora Labs",
        slug="aurora",
        support_email="help@aurora.example",
        refund_contact="refunds@aurora.example",
        revenue_share=Decimal("0.80"),
    )


@pytest.fixture
def make_app(staff, developer):
    def make(
        slug, model, amount="0", *, publish=True, webhook_url="", scopes=("contacts:read",), **plan
    ):
        app = App.objects.create(
            developer=developer,
            slug=slug,
            name=slug.replace("-", " ").title(),
            summary=f"The {slug} app",
            category=plan.pop("category", "productivity"),
            scopes=list(scopes),
            webhook_url=webhook_url,
            webhook_secret="whsec_test" if webhook_url else "",
        )
        plan_create(
            staff,
            app,
            code=plan.pop("code", "main"),
            name=plan.pop("name", "Main"),
            model=model,
            amount=amount,
            **{"interval": "month", **plan},
        )
        if publish:
            services.app_set_status(actor=staff, app=app, status=App.Status.IN_REVIEW)
            services.app_set_status(actor=staff, app=app, status=App.Status.PUBLISHED)
        app.refresh_from_db()
        return app

    return make


def plan_create(staff, app, *, code, name, model, amount, sync=True, **fields) -> Plan:
    """A plan of `app`, put in billing's catalogue (its product and price) as saving it in
    the console does, unless `sync` is false. `interval` counts for subscriptions only."""
    if model != "subscription":
        fields.pop("interval", None)
    plan = Plan.objects.create(
        app=app, code=code, name=name, pricing_model=model, amount=Decimal(amount), **fields
    )
    if sync:
        services.plan_product_sync(actor=staff, plan=plan)
    return plan


@pytest.fixture
def add_plan(staff):
    """Another plan for an app made by make_app: by default the yearly subscription at 300
    that plan changes move to."""

    def add(app, code="yearly", name="Yearly", model="subscription", amount="300", **fields):
        return plan_create(
            staff,
            app,
            code=code,
            name=name,
            model=model,
            amount=amount,
            **{"interval": "year", **fields},
        )

    return add


@pytest.fixture
def account():
    return AccountFactory(name="Acme", timezone="America/New_York")


@pytest.fixture
def owner(account):
    return owner_of(account)


@pytest.fixture
def pay(staff):
    def pay_order(order, when):
        billing.payment_record_manual(actor=staff, order=order, reference="CARD-1", now=when)
        order.refresh_from_db()
        return order

    return pay_order


def plan_of(app):
    return app.plans.get()
