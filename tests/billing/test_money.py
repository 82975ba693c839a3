from datetime import date
from decimal import Decimal

import pytest

from billing.money import Money, MoneyError, prorate, unit_rate


def usd(value):
    return Money(Decimal(value), "USD")


class TestMoney:
    def test_half_up_to_the_minor_unit(self):
        assert usd("0.005").rounded() == usd("0.01")
        assert usd("0.004").rounded() == usd("0.00")
        assert usd("-0.005").rounded() == usd("-0.01")
        assert Money(Decimal("10.5"), "JPY").rounded() == Money(Decimal("11"), "JPY")

    def test_floats_and_mixed_currencies_are_refused(self):
        with pytest.raises(MoneyError):
            Money(0.1, "USD")
        with pytest.raises(MoneyError):
            usd("1") + Money(Decimal("1"), "EUR")
        with pytest.raises(MoneyError):
            Money(Decimal("1"), "XXX")
        with pytest.raises(MoneyError):
            Money("NaN", "USD")

    def test_minor_units_for_gateways(self):
        assert usd("49.99").to_minor_units() == 4999
        assert usd("0.015").to_minor_units() == 2
        assert Money(Decimal("500"), "JPY").to_minor_units() == 500
        assert Money.from_minor_units(4999, "USD") == usd("49.99")

    def test_arithmetic_keeps_precision_until_rounded(self):
        third = usd("100") * (Decimal(1) / Decimal(3))
        assert (third + third + third).rounded() == usd("100.00")
        assert str(usd("1234.5")) == "1,234.50 USD"


# Day-based proration (policy-cases/README.md): refund = amount * unused / length.
PRORATION = [
    # amount, start, end, on, expected
    ("30.00", date(2026, 4, 1), date(2026, 5, 1), date(2026, 4, 3), "28.00"),  # worked example
    ("75.00", date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 1), "75.00"),  # first day: all
    ("75.00", date(2026, 3, 1), date(2026, 4, 1), date(2026, 4, 1), "0.00"),  # end: nothing
    ("75.00", date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 31), "2.42"),  # 1/31
    ("99.00", date(2026, 2, 1), date(2026, 3, 1), date(2026, 2, 15), "49.50"),  # 14/28
    ("10.00", date(2026, 1, 1), date(2026, 1, 4), date(2026, 1, 2), "6.67"),  # 2/3 half up
    ("1200.00", date(2026, 1, 1), date(2027, 1, 1), date(2026, 7, 1), "604.93"),  # 184/365
    ("1200.00", date(2028, 1, 1), date(2029, 1, 1), date(2028, 3, 1), "1003.28"),  # leap 306/366
    ("0.01", date(2026, 1, 1), date(2026, 1, 31), date(2026, 1, 16), "0.01"),  # 15/30 of a cent
]


@pytest.mark.parametrize(("amount", "start", "end", "on", "expected"), PRORATION)
def test_prorate_to_the_cent(amount, start, end, on, expected):
    assert prorate(usd(amount), period_start=start, period_end=end, on=on) == usd(expected)


def test_prorate_refuses_an_empty_period():
    with pytest.raises(MoneyError):
        prorate(
            usd("1"),
            period_start=date(2026, 1, 1),
            period_end=date(2026, 1, 1),
            on=date(2026, 1, 1),
        )


@pytest.mark.parametrize(
    ("units", "left", "expected"),
    [
        (50000, 40000, "80.00"),
        (100000, 62500, "62.50"),
        (3, 1, "33.33"),
        (3, 2, "66.67"),
        (10, 0, "0.00"),
    ],
)
def test_unit_rate(units, left, expected):
    assert unit_rate(usd("100.00"), units=units, units_left=left) == usd(expected)
