"""The vendor's business calendar: its time zone and the public holidays of its country
(VENDOR_TIMEZONE, VENDOR_COUNTRY, VENDOR_SUBDIVISION). Refund deadlines count its
business days, support service levels its business hours."""

import datetime as dt
import functools
import zoneinfo

from django.conf import settings


@functools.cache
def _holidays(country: str, subdivision: str | None):
    # Imported on first use: the package loads every country's calendar (0.1 s), which a
    # process that counts no business day need not pay at start-up.
    import holidays

    return holidays.country_holidays(country, subdiv=subdivision)


def vendor_holidays():
    """Public holidays of VENDOR_COUNTRY (default US); `day in it` computes the year."""
    return _holidays(
        getattr(settings, "VENDOR_COUNTRY", "US"), getattr(settings, "VENDOR_SUBDIVISION", None)
    )


def vendor_tz() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.VENDOR_TIMEZONE)


def is_business_day(day: dt.date) -> bool:
    """Monday to Friday, and not a public holiday of the vendor's country."""
    return day.weekday() < 5 and day not in vendor_holidays()
