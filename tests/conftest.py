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
