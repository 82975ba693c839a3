import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_cache():
    # allauth's rate limits live in the cache; tests must not share their counts.
    cache.clear()
    yield


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()
