"""The counting conventions of policy-cases/README.md: inclusive windows in local
dates, business days, day-based proration and unit rates rounded half up once."""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal


def last_day(start: date, days: int) -> date:
    """'Within N days of D' holds up to D + N inclusive."""
    return start + timedelta(days=days)


def add_business_days(start: date, days: int, holidays) -> date:
    """The N-th business day after `start` (Monday to Friday, minus `holidays`)."""
    day = start
    left = days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            left -= 1
    return day


def quantize(amount: Decimal, digits: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def prorated(amount: Decimal, period: tuple[date, date], on: date, digits: int) -> Decimal:
    start, end = period
    length = (end - start).days
    if length <= 0:
        return quantize(Decimal(0), digits)
    used = min(max((on - start).days, 0), length)
    return quantize(amount * (length - used) / length, digits)


def unit_rate(amount: Decimal, units: int, units_used: int, digits: int) -> Decimal:
    if not units:
        return quantize(Decimal(0), digits)
    left = min(max(units - units_used, 0), units)
    return quantize(amount * left / units, digits)


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:,} {currency}"


def day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"
