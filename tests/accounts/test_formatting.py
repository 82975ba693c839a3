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
