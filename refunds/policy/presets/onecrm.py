"""1CRM terms of service (seeds/onecrm-terms-of-service.txt)."""

from ..engine import Context, Preset, Section
from ..types import AccountFacts, Decision, LineFacts, RequestFacts


class OneCrm(Preset):
    id = "onecrm"
    title = "1CRM terms of service"
    source = "onecrm-terms-of-service.txt"
    sections = (
        Section(
            "onecrm subscriptions",
            "Monthly/Annual Subscriptions",
            "You can cancel a paid plan at any time, but unused time is not refunded; seat decreases become non-refundable account credit.",
        ),
        Section(
            "onecrm partners",
            "Purchases through partners",
            "An account bought through a partner follows that partner's policies: the partner decides every refund.",
        ),
    )

    def decide_line(
        self, line: LineFacts, account: AccountFacts, request: RequestFacts, ctx: Context
    ) -> Decision:
        if account.partner:
            return ctx.redirect(
                line,
                "onecrm partners",
                f"You bought through {account.partner}: its policies apply, and it decides refunds (1CRM terms).",
            )
        if line.kind == "subscription":
            return ctx.none(
                line,
                "onecrm subscriptions",
                None,
                "Paid plans can be cancelled at any time, but unused time is not refunded (1CRM terms, subscriptions).",
            )
        return ctx.uncovered(line, "1CRM")
