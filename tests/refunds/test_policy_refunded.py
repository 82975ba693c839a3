"""What was already refunded comes off (policy-cases/README.md, counting conventions): the
amount owed is what the rule allows minus `refunded`, never below zero, a review ceiling
too; a line with nothing left is `none`, says so, and keeps the rule's clause."""

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refunds.policy import PRESETS, AccountFacts, Context, LineFacts, RequestFacts, decide
from refunds.policy.counting import prorated
from refunds.policy.types import NONE, REDIRECT, REFUND, REVIEW
from tests.refunds.test_policy_cases import CASES

USD = Context(currency="USD", digits=2)


def _decide(case, lines):
    return decide(
        PRESETS[case.policy], account=case.account, lines=lines, request=case.request, ctx=case.ctx
    )


def test_a_line_refunded_in_full_before_says_so():
    line = LineFacts(
        id="plan", kind="subscription", amount=Decimal("100.00"), paid=date(2026, 3, 1),
        refunded=Decimal("100.00"),
    )  # fmt: skip
    decision = decide(
        PRESETS["acelle"],
        account=AccountFacts(),
        lines=[line],
        request=RequestFacts(date=date(2026, 3, 5)),
        ctx=USD,
    )["plan"]
    assert (decision.outcome, decision.amount, decision.clause) == (
        NONE,
        Decimal("0.00"),
        "acelle §1.1",
    )
    assert decision.last_day == date(2026, 3, 15)  # the window of the rule that applied
    assert decision.explanation == (
        "Already refunded: 100.00 USD of the 100.00 USD paid came back by earlier requests; "
        "nothing is left to refund."
    )


def test_what_is_left_is_said_with_what_came_back_before():
    line = LineFacts(
        id="c", kind="credit_pack", amount=Decimal("100.00"), paid=date(2026, 2, 1),
        units=50_000, units_used=10_000, refunded=Decimal("30.00"),
    )  # fmt: skip
    decision = decide(
        PRESETS["acelle"],
        account=AccountFacts(),
        lines=[line],
        request=RequestFacts(date=date(2026, 2, 21)),
        ctx=USD,
    )["c"]
    assert (decision.outcome, decision.amount) == (REFUND, Decimal("50.00"))
    assert "40,000 of 50,000 credits unused: 80.00 USD" in decision.explanation
    assert decision.explanation.endswith(
        "Already refunded: 30.00 USD of the 100.00 USD paid came back by earlier requests; "
        "50.00 USD is left to refund."
    )


def test_a_review_ceiling_says_what_is_left_at_most():
    line = LineFacts(
        id="plan", kind="subscription", amount=Decimal("49.00"), paid=date(2026, 3, 1),
        refunded=Decimal("20.00"),
    )  # fmt: skip
    decision = decide(
        PRESETS["acelle"],
        account=AccountFacts(),
        lines=[line],
        request=RequestFacts(date=date(2026, 4, 10), reason="not_as_advertised"),
        ctx=USD,
    )["plan"]
    assert (decision.outcome, decision.amount, decision.clause) == (
        REVIEW,
        Decimal("29.00"),
        "acelle §1.2",
    )
    assert decision.explanation.endswith("at most 29.00 USD is left to pay back.")


def test_a_pro_rata_share_already_paid_back_names_what_the_rule_allows():
    line = LineFacts(
        id="app", kind="app_subscription", amount=Decimal("30.00"), paid=date(2026, 4, 1),
        period=(date(2026, 4, 1), date(2026, 5, 1)), refunded=Decimal("29.00"),
    )  # fmt: skip
    decision = decide(
        PRESETS["onecloud"],
        account=AccountFacts(),
        lines=[line],
        request=RequestFacts(date=date(2026, 4, 3)),
        ctx=USD,
    )["app"]
    assert (decision.outcome, decision.amount, decision.clause) == (
        NONE,
        Decimal("0.00"),
        "onecloud §4",
    )
    assert decision.explanation == (
        "Already refunded: 29.00 USD of the 30.00 USD paid came back by earlier requests, "
        "which covers the 28.00 USD that onecloud §4 allows; nothing is left to refund."
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_nothing_refunded_before_decides_exactly_as_without_the_field(case):
    zero = [replace(line, refunded=Decimal("0.00")) for line in case.lines]
    bare = [replace(line, refunded=Decimal(0)) for line in case.lines]
    assert _decide(case, zero) == _decide(case, bare)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_every_table_case_takes_off_what_came_back_before(case):
    """Every line of every table, with an earlier refund of a cent, of half, of all of
    what its rule allows, and of all that was paid: the rule of the README, line by line,
    and the other lines of the request untouched."""
    bare = [replace(line, refunded=Decimal(0)) for line in case.lines]
    before = _decide(case, bare)
    cent = Decimal(1).scaleb(-case.ctx.digits)
    for index, line in enumerate(bare):
        rule = before[line.id]
        tries = {cent, case.ctx.amount(rule.amount / 2), rule.amount, line.amount}
        for refunded in sorted(value for value in tries if 0 < value <= line.amount):
            lines = [*bare[:index], replace(line, refunded=refunded), *bare[index + 1 :]]
            after = _decide(case, lines)
            got = after[line.id]
            assert {k: v for k, v in after.items() if k != line.id} == {
                k: v for k, v in before.items() if k != line.id
            }
            if rule.outcome == REDIRECT:
                assert got == rule  # someone else decides
                continue
            if rule.outcome == NONE:  # still nothing, and it says what came back before
                assert (got.outcome, got.amount, got.clause) == (NONE, rule.amount, rule.clause)
                assert got.explanation.startswith(rule.explanation)
                assert f"Already refunded: {case.ctx.money(refunded)}" in got.explanation
                continue
            assert (got.clause, got.last_day) == (rule.clause, rule.last_day)
            if refunded >= rule.amount:
                assert (got.outcome, got.amount) == (NONE, case.ctx.amount(Decimal(0)))
                assert got.explanation.startswith("Already refunded: ")
                assert got.explanation.endswith("nothing is left to refund.")
            else:
                assert (got.outcome, got.amount) == (rule.outcome, rule.amount - refunded)
                assert got.explanation.startswith(rule.explanation)
                assert case.ctx.money(refunded) in got.explanation


@settings(max_examples=300, deadline=None)
@given(
    cents=st.integers(1, 10**8),
    days=st.integers(1, 400),
    asked=st.integers(0, 3),
    share=st.fractions(0, 1),
)
def test_pro_rata_is_on_what_was_paid_and_the_earlier_refund_comes_off_it(
    cents, days, asked, share
):
    amount = Decimal(cents) / 100
    paid = date(2026, 1, 1)
    period = (paid, paid + timedelta(days=days))
    refunded = USD.amount(amount * share.numerator / share.denominator)
    line = LineFacts(
        id="app", kind="app_subscription", amount=amount, paid=paid, period=period,
        refunded=refunded,
    )  # fmt: skip
    on = paid + timedelta(days=asked)
    got = decide(
        PRESETS["onecloud"],
        account=AccountFacts(),
        lines=[line],
        request=RequestFacts(date=on),
        ctx=USD,
    )["app"]
    allowed = prorated(amount, period, on, 2)
    if refunded and refunded >= allowed:
        assert (got.outcome, got.amount) == (NONE, Decimal("0.00"))
    else:
        assert (got.outcome, got.amount) == (REFUND, allowed - refunded)
