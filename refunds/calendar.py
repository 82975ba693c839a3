"""The vendor's business calendar: the public holidays of its country (a setting)."""

import functools

import holidays


@functools.cache
def _holidays(country: str, subdivision: str | None):
    return holidays.country_holidays(country, subdiv=subdivision)


def vendor_holidays():
    """Public holidays of REFUND_VENDOR_COUNTRY (default US); `day in it` computes the year."""
    from django.conf import settings

    return _holidays(
        getattr(settings, "VENDOR_COUNTRY", "US"), getattr(settings, "VENDOR_SUBDIVISION", None)
    )
