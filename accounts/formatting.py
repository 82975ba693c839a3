"""Money and dates as customers read them: Babel (CLDR) in the account's locale, the
same on every page and in every mail.

- money(amount, currency): always with its currency ("$1,234.50", "CA$49.00",
  "1.234,50 €"); never a bare number.
- day(date): one date style everywhere ("December 1, 2026").
- moment(datetime): that date and the time in the current time zone
  ("December 1, 2026, 11:13 AM").
- through(first, last): a period by its first and last day, the last day stated once
  ("Dec 1 - 31, 2026" with an en dash); pass the last day the customer has, not the exclusive end.

The locale is the current account's (CurrentAccountMiddleware sets it for a page;
a job that mails an account wraps its work in `override(account.locale)`), else
PORTAL_LOCALE (en_US).
"""

import datetime as dt
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from functools import lru_cache

from babel.dates import format_date, format_interval, format_time
from babel.numbers import format_currency
from django.conf import settings
from django.utils import timezone

_locale: ContextVar[str | None] = ContextVar("portal_locale", default=None)


def current_locale() -> str:
    return _locale.get() or getattr(settings, "PORTAL_LOCALE", "en_US")


@contextmanager
def override(locale: str | None):
    token = _locale.set(locale or None)
    try:
        yield
    finally:
        _locale.reset(token)


# Babel parses the locale and the pattern on every call, a third of a long list's
# rendering: each distinct value is formatted once per process (the output depends only
# on the value, the currency and the locale).
@lru_cache(maxsize=8192)
def _money(amount: str, currency: str, locale: str) -> str:
    return format_currency(Decimal(amount), currency, locale=locale)


@lru_cache(maxsize=4096)
def _date(value: dt.date, locale: str) -> str:
    return format_date(value, format="long", locale=locale)


@lru_cache(maxsize=4096)
def _time(value: dt.time, locale: str) -> str:
    return format_time(value, format="short", locale=locale)


@lru_cache(maxsize=4096)
def _interval(first: dt.date, last: dt.date, locale: str) -> str:
    return format_interval(first, last, "yMMMd", locale=locale)


def money(amount, currency: str, locale: str | None = None) -> str:
    if amount is None or amount == "":
        return ""
    return _money(str(Decimal(amount)), currency, locale or current_locale())


def day(value, locale: str | None = None) -> str:
    if not value:
        return ""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return _date(value, locale or current_locale())


def moment(value, locale: str | None = None) -> str:
    if not value:
        return ""
    locale = locale or current_locale()
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    # The short time shows hours and minutes only.
    minute = local.time().replace(second=0, microsecond=0)
    return f"{day(local.date(), locale)}, {_time(minute, locale)}"


def through(first, last, locale: str | None = None) -> str:
    if not first or not last:
        return day(first or last, locale)
    if isinstance(first, dt.datetime) or isinstance(last, dt.datetime):
        # Equal instants in other zones would share a cache entry: not cached.
        return format_interval(first, last, "yMMMd", locale=locale or current_locale())
    return _interval(first, last, locale or current_locale())
