from datetime import date
from decimal import Decimal

import pytest

from billing.models import Price, Product, Subscription
from tests.factories import AccountFactory


@pytest.fixture
def plan():
    product = Product.objects.create(
        code="pro",
        name="Professional",
        kind="subscription",
        edition="professional",
        deployment="cloud",
    )
    return Price.objects.create(
        product=product,
        currency="USD",
        amount=Decimal("31.00"),
        scheme="per_seat",
        interval="month",
    )


@pytest.fixture
def account(plan):
    account = AccountFactory(seats_paid=3, timezone="America/New_York")
    Subscription.objects.create(
        account=account,
        price=plan,
        quantity=3,
        current_period_start=date(2026, 3, 1),
        current_period_end=date(2026, 4, 1),
    )
    return account


@pytest.fixture
def subscription(account):
    return Subscription.objects.get(account=account)


@pytest.fixture
def enterprise():
    product = Product.objects.create(code="ent", name="Enterprise", kind="subscription")
    return Price.objects.create(
        product=product,
        currency="USD",
        amount=Decimal("62.00"),
        scheme="per_seat",
        interval="month",
    )
