"""decide(): a decision per line, under the active preset, citing its clause."""

from dataclasses import dataclass, field
from decimal import Decimal

from .counting import money, quantize
from .types import NONE, REDIRECT, REFUND, REVIEW, AccountFacts, Decision, LineFacts, RequestFacts


@dataclass(frozen=True)
class Section:
    clause: str  # "acelle §2.2"
    title: str
    rule: str  # what the engine does with it, in one sentence


@dataclass
class Context:
    """What one decision needs besides the facts: the currency and the calendar."""

    currency: str = "USD"
    digits: int = 2
    holidays: object = field(default_factory=frozenset)  # anything supporting `day in it`

    def amount(self, value: Decimal) -> Decimal:
        return quantize(value, self.digits)

    def money(self, value: Decimal) -> str:
        return money(self.amount(value), self.currency)

    # One constructor per outcome: the amount is rounded once, here.
    def refund(self, line: LineFacts, amount, clause, last_day, text) -> Decision:
        return Decision(line.id, REFUND, self.amount(amount), clause, last_day, text)

    def review(self, line: LineFacts, amount, clause, last_day, text) -> Decision:
        return Decision(line.id, REVIEW, self.amount(amount), clause, last_day, text)

    def none(self, line: LineFacts, clause, last_day, text) -> Decision:
        return Decision(line.id, NONE, self.amount(Decimal(0)), clause, last_day, text)

    def redirect(self, line: LineFacts, clause, text) -> Decision:
        return Decision(line.id, REDIRECT, self.amount(Decimal(0)), clause, None, text)

    def uncovered(self, line: LineFacts, preset: str) -> Decision:
        return self.review(
            line,
            line.amount,
            "uncovered",
            None,
            f"The {preset} policy does not speak of {line.kind.replace('_', ' ')} purchases: "
            f"our billing team decides, up to the {self.money(line.amount)} paid.",
        )


class Preset:
    id: str = ""
    title: str = ""
    source: str = ""  # the seed document it encodes
    sections: tuple[Section, ...] = ()

    def decide_line(
        self, line: LineFacts, account: AccountFacts, request: RequestFacts, ctx: Context
    ) -> Decision:
        raise NotImplementedError

    def terms(self, kind: str, *, refund_days: int | None = None, trial_days: int = 0) -> str:
        """A kind's refund terms in plain words, for the page that sells it."""
        return f"Refunds follow the {self.title}."

    def finish(
        self,
        decisions: dict[str, Decision],
        lines: list[LineFacts],
        account: AccountFacts,
        request: RequestFacts,
        ctx: Context,
    ) -> dict[str, Decision]:
        """Rules over the whole request (acelle §4's full-order refund)."""
        return decisions


def decide(
    preset: Preset,
    *,
    account: AccountFacts,
    lines: list[LineFacts],
    request: RequestFacts,
    ctx: Context,
) -> dict[str, Decision]:
    decisions = {line.id: preset.decide_line(line, account, request, ctx) for line in lines}
    decisions = preset.finish(decisions, lines, account, request, ctx)
    for line in lines:
        if line.refunded > 0:
            decisions[line.id] = less_refunded(decisions[line.id], line, ctx)
    return decisions


def less_refunded(decision: Decision, line: LineFacts, ctx: Context) -> Decision:
    """What was already refunded comes off what the rule allows, never below zero, for a
    refund and a review ceiling alike; a line with nothing left is `none` under the same
    clause (policy-cases/README.md, counting conventions). The rule's amount is computed
    on the full line (a pro-rata or unit-rate share of what was paid), and the earlier
    refunds come off that."""
    allowed, refunded = decision.amount, line.refunded
    earlier = (
        f"Already refunded: {ctx.money(refunded)} of the {ctx.money(line.amount)} paid "
        "came back by earlier requests"
    )
    if decision.outcome == REDIRECT:
        return decision  # someone else decides
    if decision.outcome not in (REFUND, REVIEW):  # none stays none, and says so
        return ctx.none(
            line, decision.clause, decision.last_day, f"{decision.explanation} {earlier}."
        )
    if refunded >= allowed:
        if allowed == ctx.amount(line.amount):
            text = f"{earlier}; nothing is left to refund."
        else:
            text = (
                f"{earlier}, which covers the {ctx.money(allowed)} that {decision.clause} "
                "allows; nothing is left to refund."
            )
        return ctx.none(line, decision.clause, decision.last_day, text)
    left = allowed - refunded
    if decision.outcome == REFUND:
        return ctx.refund(
            line,
            left,
            decision.clause,
            decision.last_day,
            f"{decision.explanation} {earlier}; {ctx.money(left)} is left to refund.",
        )
    return ctx.review(
        line,
        left,
        decision.clause,
        decision.last_day,
        f"{decision.explanation} {earlier}; at most {ctx.money(left)} is left to pay back.",
    )
