"""Month and year arithmetic on local dates, shared by every app. Pure code.

A period runs from its start up to, not including, its end. Adding months keeps the
day of the month, or the month's last day when it has fewer days (31 January plus a
month is 28 or 29 February): the policy windows and the support years count on it.
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

MONTH, YEAR = "month", "year"  # Price.Interval's values


def add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def add_years(day: date, years: int) -> date:
    """The same date `years` on; 29 February becomes 28 February in other years."""
    return add_months(day, 12 * years)


def next_period_end(start: date, interval: str) -> date:
    """The end of a period of one `interval` ("month" or "year") that starts on `start`."""
    if interval == MONTH:
        return add_months(start, 1)
    if interval == YEAR:
        return add_months(start, 12)
    raise ValueError(f"“{interval}” is not a recurring interval")


def month_start(day: date) -> date:
    return day.replace(day=1)


def first_of_next_month(day: date) -> date:
    return add_months(month_start(day), 1)


def end_of_month(day: date) -> date:
    """The month's last day."""
    return first_of_next_month(day) - timedelta(days=1)


# --- 1CRM terms, On-Premise Perpetual Licenses ----------------------------------------------
#
# "If a client allows their support and updates subscription to expire, and then would
# like to renew their subscription at a later date, their renewal will be effective from
# the date their subscription expired (to a maximum of 12 months in arrears), to 12 months
# after the end of the month at the time of renewal."


@dataclass(frozen=True)
class SupportRenewal:
    start: date  # first day covered
    end: date  # last day covered (inclusive)
    arrears_days: int  # days before the renewal date that the renewal pays for

    @property
    def months_billed(self) -> int:
        """Whole months between start and end, rounding a partial month up."""
        months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month
        return months + (1 if self.end.day >= self.start.day else 0)


def support_renewal_period(*, expired_on: date, renewed_on: date) -> SupportRenewal:
    """The period a support renewal covers.

    `expired_on` is the first day without support (the old contract's end).
    A renewal before the expiry simply continues from it; a late one runs from
    the expiry date, at most 12 months back, to 12 months after the end of the
    month of renewal.
    """
    if renewed_on < expired_on:
        # Renewed in time: one more year from the expiry date.
        return SupportRenewal(
            start=expired_on, end=add_months(expired_on, 12) - timedelta(days=1), arrears_days=0
        )
    earliest = add_months(renewed_on, -12)
    start = max(expired_on, earliest)
    end = add_months(first_of_next_month(renewed_on), 12) - timedelta(days=1)
    return SupportRenewal(start=start, end=end, arrears_days=(renewed_on - start).days)
