"""Money as Decimal with its currency, and the day-based proration of the policies.

Pure code: no ORM, no clock. Rounding is half up to the currency's minor unit,
once, at the end (policy-cases/README.md, "Counting conventions").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from accounts.models import CURRENCIES


class MoneyError(ValueError):
    pass


def minor_unit(currency: str) -> Decimal:
    try:
        digits = CURRENCIES[currency]
    except KeyError as exc:
        raise MoneyError(f"“{currency}” is not a billing currency.") from exc
    return Decimal(1).scaleb(-digits)


def to_decimal(value) -> Decimal:
    """A Decimal from a Decimal, int or decimal string; floats are refused."""
    if isinstance(value, float):
        raise MoneyError("Amounts are never floats; pass a Decimal or a decimal string.")
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise MoneyError(f"“{value}” is not an amount.") from exc
    if not result.is_finite():
        raise MoneyError(f"“{value}” is not an amount.")
    return result


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self):
        object.__setattr__(self, "amount", to_decimal(self.amount))
        minor_unit(self.currency)  # validates the currency

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def rounded(self) -> Money:
        return Money(
            self.amount.quantize(minor_unit(self.currency), rounding=ROUND_HALF_UP), self.currency
        )

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise MoneyError(
                f"Cannot mix {self.currency} with {getattr(other, 'currency', other)}."
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor) -> Money:
        return Money(self.amount * to_decimal(factor), self.currency)

    def __truediv__(self, divisor) -> Money:
        return Money(self.amount / to_decimal(divisor), self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def to_minor_units(self) -> int:
        """What a gateway such as Stripe is sent: an integer count of minor units."""
        rounded = self.rounded().amount
        return int(rounded.scaleb(CURRENCIES[self.currency]))

    @classmethod
    def from_minor_units(cls, units: int, currency: str) -> Money:
        return cls(Decimal(units).scaleb(-CURRENCIES[currency]), currency)

    def __str__(self) -> str:
        return f"{self.rounded().amount:,} {self.currency}"


def prorate(amount: Money, *, period_start: date, period_end: date, on: date) -> Money:
    """The part of `amount` for the days from `on` to the end of the period.

    Whole days: used = on - start, unused = length - used; a change on the first
    day of the period gets the whole amount, on or after the end nothing.
    """
    length = (period_end - period_start).days
    if length <= 0:
        raise MoneyError("A period must end after it starts.")
    used = min(max((on - period_start).days, 0), length)
    return (amount * Decimal(length - used) / Decimal(length)).rounded()


def unit_rate(amount: Money, *, units: int, units_left: int) -> Money:
    """The part of `amount` for the units not consumed."""
    if units <= 0:
        raise MoneyError("A pack must carry at least one unit.")
    units_left = min(max(units_left, 0), units)
    return (amount * Decimal(units_left) / Decimal(units)).rounded()
