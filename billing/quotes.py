"""What a seat change costs or credits. Pure code: the services pass today's local date."""

from dataclasses import dataclass
from datetime import date, timedelta

from accounts import formatting
from accounts.formatting import day

from .money import Money, prorate


@dataclass(frozen=True)
class SeatChangeQuote:
    current: int
    new: int
    unit_price: Money  # per seat for the whole period
    amount: Money  # charged (increase) or credited (decrease), for the rest of the period
    period_start: date  # today: the change takes effect at once
    period_end: date
    trial: bool = False  # during a trial seats change without charge or credit
    tax: Money | None = None  # on `amount`, from the billing country (billing.tax)
    tax_name: str = ""

    @property
    def last_day(self) -> date:
        return self.period_end - timedelta(days=1)

    @property
    def delta(self) -> int:
        return self.new - self.current

    @property
    def kind(self) -> str:
        return "charge" if self.delta > 0 else "credit" if self.delta < 0 else "none"

    def explain(self) -> str:
        days = (self.period_end - self.period_start).days
        if self.trial and self.kind != "none":
            return (
                f"During the trial, going from {self.current} to {self.new} seats is free; "
                "the first charge covers the seats you have when the trial ends."
            )
        seats = abs(self.delta)
        plural = "s" if seats != 1 else ""
        if self.kind == "charge":
            return (
                f"Adding {seats} seat{plural} now costs {shown(self.amount)} for the {days} days left "
                f"in this period (through {day(self.last_day)}), charged at once: added seats "
                "are charged pro rata to the end of the period."
                + tax_words(self.amount, self.tax, self.tax_name)
            )
        if self.kind == "credit":
            return (
                f"Removing {seats} seat{plural} now puts {shown(self.amount)} of credit on your account "
                f"for the {days} days left in this period. The credit is not refundable and is "
                "applied to your next charges."
                + tax_words(self.amount, self.tax, self.tax_name, credit=True)
            )
        return "No change."

    @property
    def total(self) -> Money:
        """What is charged or credited, with its tax."""
        return self.amount + self.tax if self.tax else self.amount


def shown(value: Money) -> str:
    """An amount as the pages show it (Babel, the account's locale)."""
    return formatting.money(value.rounded().amount, value.currency)


def tax_words(amount: Money, tax: Money | None, name: str, *, credit: bool = False) -> str:
    """The tax part of a preview: " Plus VAT 19%: 5.70 USD, 35.70 USD in all."."""
    if not name:
        return ""
    if tax is None or tax.amount == 0:
        return f" {name}: no tax is charged." if name == "Reverse charge" else ""
    if credit:
        return f" With the {name} paid on it: {shown(amount + tax)} of credit in all."
    return f" Plus {name}: {shown(tax)}, {shown(amount + tax)} in all."


def seat_change_quote(
    *, unit_price: Money, current: int, new: int, period_start: date, period_end: date, today: date
) -> SeatChangeQuote:
    # Rounded once, at the end: the seats' whole price prorated, not each seat's.
    amount = prorate(
        unit_price * abs(new - current), period_start=period_start, period_end=period_end, on=today
    )
    return SeatChangeQuote(
        current=current,
        new=new,
        unit_price=unit_price,
        amount=amount,
        period_start=max(today, period_start),
        period_end=period_end,
    )


@dataclass(frozen=True)
class PlanChangeQuote:
    current: str  # plan names, for the explanation
    new: str
    kind: str  # "upgrade" (now) | "downgrade" (next cycle) | "stay" (undo a downgrade) | "none"
    amount: Money  # charged now for an upgrade; zero otherwise
    period_start: date
    period_end: date
    # What stops working on the new plan's edition (1CRM terms: the WordPress portal).
    stops: tuple[str, ...] = ()
    tax: Money | None = None  # on `amount`, from the billing country (billing.tax)
    tax_name: str = ""

    @property
    def last_day(self) -> date:
        return self.period_end - timedelta(days=1)

    def explain(self) -> str:
        if self.kind == "upgrade":
            days = (self.period_end - self.period_start).days
            return (
                f"Moving from {self.current} to {self.new} takes effect now: the price "
                f"difference for the {days} days left in this period is {shown(self.amount)}, charged "
                "at once, and the new plan's benefits apply immediately."
                + tax_words(self.amount, self.tax, self.tax_name)
            )
        if self.kind == "downgrade":
            return (
                f"Moving from {self.current} to {self.new} takes effect when this period ends "
                f"on {day(self.period_end)}. Nothing of the current period is refunded, and "
                f"{self.current}'s benefits stay through {day(self.last_day)}."
            )
        if self.kind == "stay":
            return f"Stay on {self.new}: the move planned for {day(self.period_end)} is cancelled."
        return "No change."


def plan_change_quote(
    *,
    current_name: str,
    new_name: str,
    current_total: Money,
    new_total: Money,
    period_start: date,
    period_end: date,
    today: date,
    same_plan: bool = False,
    downgrade_pending: bool = False,
) -> PlanChangeQuote:
    difference = new_total - current_total
    amount = Money.zero(new_total.currency)
    if same_plan:
        kind = "stay" if downgrade_pending else "none"
    elif difference.amount > 0:
        kind = "upgrade"
        amount = prorate(difference, period_start=period_start, period_end=period_end, on=today)
    else:
        kind = "downgrade" if difference.amount < 0 else "none"
    return PlanChangeQuote(
        current=current_name,
        new=new_name,
        kind=kind,
        amount=amount,
        period_start=max(today, period_start),
        period_end=period_end,
    )
