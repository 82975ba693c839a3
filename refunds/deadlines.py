"""Deadlines in the vendor's business days (acelle §5): end of the N-th business day
after a moment, in the vendor's time zone; the clock stops while waiting on the customer."""

import datetime as dt

from core.calendar import vendor_holidays, vendor_tz

from .policy.counting import add_business_days

ACKNOWLEDGE_DAYS = 2  # "acknowledges within 1-2 business days"
DECIDE_DAYS = 5  # "eligibility review within 5 business days"
PAYOUT_FROM_DAYS = 7  # "returned ... within 7-14 business days"
PAYOUT_DAYS = 14


def local_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(vendor_tz()).date()


def end_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=vendor_tz())


def business_day_after(moment: dt.datetime, days: int) -> dt.date:
    return add_business_days(local_date(moment), days, vendor_holidays())


def due_after(moment: dt.datetime, days: int) -> dt.datetime:
    """The end of the `days`-th business day after `moment`."""
    return end_of_day(business_day_after(moment, days))


def business_days_between(start: dt.datetime, end: dt.datetime) -> int:
    """Business days after `start`'s date, up to and including `end`'s date."""
    holidays = vendor_holidays()
    day, last, count = local_date(start), local_date(end), 0
    while day < last:
        day += dt.timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            count += 1
    return count


def shifted(deadline: dt.datetime | None, days: int) -> dt.datetime | None:
    """A deadline moved on by `days` business days (the time spent in needs_info)."""
    if deadline is None or days <= 0:
        return deadline
    return end_of_day(add_business_days(local_date(deadline), days, vendor_holidays()))


def reminder_from(deadline: dt.datetime) -> dt.datetime:
    """A business day before the deadline: the start of the previous business day."""
    day = local_date(deadline)
    holidays = vendor_holidays()
    previous = day - dt.timedelta(days=1)
    while previous.weekday() >= 5 or previous in holidays:
        previous -= dt.timedelta(days=1)
    return dt.datetime.combine(previous, dt.time(0, 0), tzinfo=vendor_tz())
