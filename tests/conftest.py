from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache

pytest_plugins = ["tests.stripe_fixtures"]


def _clear_own_cache():
    """Empty this run's cache only: on a shared Redis, FLUSHDB would also wipe the
    keys (rate limits, say) of another run using the same database."""
    from django.core.cache.backends.redis import RedisCache

    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(None, write=True)
        prefix = settings.CACHES["default"]["KEY_PREFIX"]
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _clear_cache():
    # allauth's rate limits live in the cache; tests must not share their counts.
    _clear_own_cache()
    yield


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def billing_staff():
    """A billing reviewer: records payments, adjusts the ledger, marks services accepted."""
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Billing reviewer"))
    return user


@pytest.fixture
def shop_prices():
    from billing.models import Price, Product

    def price(code, kind, amount, **extra):
        product = Product.objects.create(code=code, name=code.title(), kind=kind, **extra)
        return Price.objects.create(
            product=product, currency="USD", amount=Decimal(amount), interval="one_off"
        )

    return {
        "credits": price("credits", "credit_pack", "100", units=1000),
        "plugin": price("plugin", "plugin", "49"),
        "storage": price("storage", "quota_addon", "20"),
    }


@pytest.fixture
def paid_order(shop_prices, billing_staff):
    """Acme bought credits and a plugin on Monday 2 March, paid by bank transfer."""

    from billing import services as billing_services
    from tests.factories import AccountFactory, owner_of

    def make(account=None, items=("credits", "plugin"), when=None):
        when = when or datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 2 March
        account = account or AccountFactory(name="Acme", timezone="America/New_York")
        order = billing_services.purchase_place(
            actor=owner_of(account),
            account=account,
            items=[{"price": shop_prices[name].pk} for name in items],
            now=when,
        )
        billing_services.payment_record_manual(
            actor=billing_staff, order=order, reference="BANK-1", now=when
        )
        order.refresh_from_db()
        return account, order

    return make
