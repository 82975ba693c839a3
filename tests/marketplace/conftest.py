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
        defaults = {"interval": "month"} if model == "subscription" else {}
        row = Plan.objects.create(
            app=app,
            code=plan.pop("code", "main"),
            name=plan.pop("name", "Main"),
            pricing_model=model,
            amount=Decimal(amount),
            **{**defaults, **plan},
        )
        services.plan_product_sync(actor=staff, plan=row)
        if publish:
            services.app_set_status(actor=staff, app=app, status=App.Status.IN_REVIEW)
            services.app_set_status(actor=staff, app=app, status=App.Status.PUBLISHED)
        app.refresh_from_db()
        return app

    return make


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
