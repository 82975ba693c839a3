from datetime import date

import pytest

from billing.periods import support_renewal_period

# 1CRM terms: effective from the expiry (at most 12 months in arrears) to
# 12 months after the end of the month of renewal.
CASES = [
    # expired_on, renewed_on, start, end (inclusive), arrears days
    (date(2026, 3, 1), date(2026, 5, 20), date(2026, 3, 1), date(2027, 5, 31), 80),
    (date(2026, 3, 1), date(2026, 3, 1), date(2026, 3, 1), date(2027, 3, 31), 0),
    (date(2026, 3, 1), date(2026, 3, 31), date(2026, 3, 1), date(2027, 3, 31), 30),
    # More than a year late: only 12 months in arrears are charged.
    (date(2024, 1, 15), date(2026, 2, 10), date(2025, 2, 10), date(2027, 2, 28), 365),
    # Exactly 12 months late.
    (date(2025, 6, 10), date(2026, 6, 10), date(2025, 6, 10), date(2027, 6, 30), 365),
    # Renewed before it lapsed: a year on from the expiry date.
    (date(2026, 9, 1), date(2026, 8, 15), date(2026, 9, 1), date(2027, 8, 31), 0),
    # Leap years and month ends.
    (date(2028, 2, 29), date(2028, 2, 29), date(2028, 2, 29), date(2029, 2, 28), 0),
    (date(2026, 12, 31), date(2027, 1, 31), date(2026, 12, 31), date(2028, 1, 31), 31),
]


@pytest.mark.parametrize(("expired", "renewed", "start", "end", "arrears"), CASES)
def test_support_renewal_period(expired, renewed, start, end, arrears):
    period = support_renewal_period(expired_on=expired, renewed_on=renewed)
    assert (period.start, period.end, period.arrears_days) == (start, end, arrears)


def test_months_billed_rounds_a_partial_month_up():
    period = support_renewal_period(expired_on=date(2026, 3, 1), renewed_on=date(2026, 5, 20))
    assert period.months_billed == 15  # March 2026 to May 2027
