"""Money and dates in the account's locale, always with the currency."""

import datetime as dt
from decimal import Decimal

from django.template import Context, Template

from accounts import formatting


def test_money_always_names_its_currency_in_the_locales_way():
    assert formatting.money(Decimal("1234.5"), "USD") == "$1,234.50"
    assert formatting.money("49", "CAD") == "CA$49.00"
    assert formatting.money("1234.5", "EUR", "de_DE") == "1.234,50\xa0€"
    assert formatting.money(None, "USD") == ""


def test_one_date_style_and_a_period_by_its_last_day():
    assert formatting.day(dt.date(2026, 12, 1)) == "December 1, 2026"
    assert (
        formatting.through(dt.date(2026, 12, 1), dt.date(2026, 12, 31))
        == "Dec 1\u2009\u2013\u200931, 2026"
    )
    with formatting.override("de_DE"):
        assert formatting.day(dt.date(2026, 12, 1)) == "1. Dezember 2026"


def test_the_template_filters_use_the_current_locale():
    template = Template("{% load portal %}{{ amount|money:'EUR' }} {{ when|day }}")
    context = Context({"amount": Decimal("5"), "when": dt.date(2026, 3, 2)})
    assert template.render(context) == "€5.00 March 2, 2026"
    with formatting.override("fr_FR"):
        assert template.render(context) == "5,00\xa0€ 2 mars 2026"


def test_staff_lists_show_stored_amounts_to_the_cent_with_their_currency():
    from types import SimpleNamespace

    from accounts.admin import money_column

    row = SimpleNamespace(amount=Decimal("58.0000"), currency="USD")
    assert money_column("amount")(row) == "$58.00"
    usage = SimpleNamespace(
        amount=Decimal("0.5000"), installation=SimpleNamespace(plan=SimpleNamespace(currency="EUR"))
    )
    assert money_column("amount", "installation__plan__currency")(usage) == "€0.50"


def test_the_cached_formats_are_babels_own_for_every_value_and_locale():
    """money, day, moment and through keep each distinct value's text once per process:
    the text is what Babel gives for that value, whatever was formatted before."""
    from babel.dates import format_date, format_interval, format_time
    from babel.numbers import format_currency

    amounts = ["0", "-0", "100", "100.0000", "1234.5", "0.005", "-12.3456", "99999999.99"]
    days = [dt.date(2026, 1, 31), dt.date(2026, 12, 1), dt.date(2027, 2, 28)]
    for locale in ("en_US", "de_DE", "ja_JP", "fr_CA"):
        for amount in amounts:
            for currency in ("USD", "EUR", "JPY"):
                for _ in range(2):  # the second call comes from the cache
                    assert formatting.money(Decimal(amount), currency, locale) == (
                        format_currency(Decimal(amount), currency, locale=locale)
                    )
        for first in days:
            assert formatting.day(first, locale) == format_date(first, "long", locale=locale)
            for last in days:
                if last >= first:
                    assert formatting.through(first, last, locale) == format_interval(
                        first, last, "yMMMd", locale=locale
                    )
        at = dt.datetime(2026, 12, 1, 11, 13, 59, tzinfo=dt.UTC)
        for _ in range(2):
            assert formatting.moment(at, locale) == (
                f"{format_date(at.date(), 'long', locale=locale)}, "
                f"{format_time(at.time(), 'short', locale=locale)}"
            )
