from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing.money import Money

UTC = ZoneInfo("UTC")

# 2026-03-11 02:00 UTC is still 10 March in New York: 22 of 31 days left.
NOW = datetime(2026, 3, 11, 2, 0, tzinfo=UTC)


def usd(value):
    return Money(Decimal(value), "USD")
