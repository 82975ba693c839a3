"""On-premise support contracts: the renewal period of the 1CRM terms. Pure code.

1CRM terms, On-Premise Perpetual Licenses: "If a client allows their support and
updates subscription to expire, and then would like to renew their subscription
at a later date, their renewal will be effective from the date their subscription
expired (to a maximum of 12 months in arrears), to 12 months after the end of the
month at the time of renewal."
"""

from dataclasses import dataclass
from datetime import date, timedelta


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    raise ValueError(day)


def _end_of_month(day: date) -> date:
    return _add_months(day.replace(day=1), 1) - timedelta(days=1)


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
            start=expired_on, end=_add_months(expired_on, 12) - timedelta(days=1), arrears_days=0
        )
    earliest = _add_months(renewed_on, -12)
    start = max(expired_on, earliest)
    end = _add_months(_end_of_month(renewed_on) + timedelta(days=1), 12) - timedelta(days=1)
    return SupportRenewal(start=start, end=end, arrears_days=(renewed_on - start).days)
