from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing.money import Money

UTC = ZoneInfo("UTC")

# 2026-03-11 02:00 UTC is still 10 March in New York: 22 of 31 days left.
NOW = datetime(2026, 3, 11, 2, 0, tzinfo=UTC)
# The fixture's period is 1 March to 1 April 2026 in New York.
AFTER_END = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)  # 1 April, 08:00 in New York
BEFORE_END = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)  # still 31 March in New York


def usd(value):
    return Money(Decimal(value), "USD")
