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
    return preset.finish(decisions, lines, account, request, ctx)
