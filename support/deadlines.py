"""Service-level deadlines in business hours: the vendor's working hours on its business
days (the same calendar as refund requests: VENDOR_COUNTRY, VENDOR_TIMEZONE)."""

import datetime as dt

from django.conf import settings

from core.calendar import is_business_day, vendor_tz


def add_business_hours(moment: dt.datetime, hours: float) -> dt.datetime:
    """`hours` of working time after `moment`: nights, weekends and holidays don't count."""
    opens, closes = settings.SUPPORT_HOURS
    tz = vendor_tz()
    local = moment.astimezone(tz)
    left = dt.timedelta(hours=hours)
    while True:
        day = local.date()
        start = dt.datetime.combine(day, dt.time(opens), tzinfo=tz)
        end = dt.datetime.combine(day, dt.time(closes), tzinfo=tz)
        if not is_business_day(day) or local >= end:
            local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(opens), tzinfo=tz)
            continue
        local = max(local, start)
        if local + left <= end:
            return local + left
        left -= end - local
        local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(opens), tzinfo=tz)


def targets(severity: str) -> tuple[float, float]:
    """(first response, update) in business hours for a severity (a settings table)."""
    row = settings.SUPPORT_TARGETS[severity]
    return row["first_response_hours"], row["update_hours"]
