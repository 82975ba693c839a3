from datetime import UTC, datetime

import pytest

# Monday 2 March 2026, 10:00 in New York (the vendor's zone).
MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _acelle(settings):
    settings.REFUND_POLICY = "acelle"
    settings.VENDOR_TIMEZONE = "America/New_York"
    settings.VENDOR_COUNTRY = "US"


@pytest.fixture
def catalogue(shop_prices):
    """The refunds tests' name for the shared one-off prices (tests/conftest.py)."""
    return shop_prices
