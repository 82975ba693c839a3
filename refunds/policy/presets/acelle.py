"""AcelleMail refund policy (seeds/acelle-refund-policy.txt), with the readings of
policy-cases/README.md."""

from ..counting import add_business_days, day, last_day, unit_rate
from ..engine import Context, Preset, Section
from ..types import REDIRECT, REFUND, REVIEW, AccountFacts, Decision, LineFacts, RequestFacts

TYPE_A = ("subscription",)
TYPE_B = ("credit_pack", "quota_addon")
TYPE_C = ("perpetual_license", "plugin", "service")
MONEY_BACK_DAYS = 14  # §1.1
BUG_FIX_DAYS_A = 7  # §1.2
UNUSED_DAYS = 7  # §2.1
BALANCE_DAYS = 30  # §2.2, §2.3
DELIVERY_BUSINESS_DAYS = 7  # §3.2
BUG_FIX_DAYS_C = 30  # §3.2
CLAIM_DAYS = 30  # §3.2
FULL_ORDER_DAYS = 14  # §4
BILLING_REASONS = ("billing_error", "duplicate_charge")
TYPE_C_NAMES = {
    "perpetual_license": "Perpetual licences",
    "plugin": "Standalone plugins",
    "service": "Paid services",
}


class Acelle(Preset):
    id = "acelle"
    title = "AcelleMail refund policy"
    source = "acelle-refund-policy.txt"
    sections = (
        Section(
            "acelle §1.1",
            "Type A: 14-day money-back guarantee",
            "A first paid subscription is refunded in full within 14 days of payment, no questions asked.",
        ),
        Section(
            "acelle §1.2",
            "Type A: refunds after 14 days",
            "Not as advertised, a P0/P1 bug not fixed within 7 days of the report, a billing error, or our outage: staff review the claim.",
        ),
        Section(
            "acelle §1.3",
            "Type A: not eligible",
            "Past 14 days, renewals, ToS suspensions, no longer needed, force majeure or the customer's own infrastructure.",
        ),
        Section(
            "acelle §2.1",
            "Type B: before use",
            "Within 7 days of purchase, nothing consumed: refunded in full.",
        ),
        Section(
            "acelle §2.2",
            "Type B: after use",
            "Credit packs: the unused units at the unit rate within 30 days; storage and API quota: nothing once activated.",
        ),
        Section(
            "acelle §2.3",
            "Type B: not eligible",
            "More than 30 days after purchase, or the subscription suspended for a ToS violation.",
        ),
        Section(
            "acelle §3.1",
            "Type C: no refund after delivery",
            "Licences, plugins and services are not refunded once delivered; not yet delivered, they are refunded in full.",
        ),
        Section(
            "acelle §3.2",
            "Type C: exceptional cases",
            "Not delivered within 7 business days, a P0 bug unresolved 30 days after its report, or a billing error: staff review claims made within 30 days of the triggering event.",
        ),
        Section(
            "acelle §4",
            "Mixed orders",
            "Each line follows its type; a full-order refund asked explicitly within 14 days, with nothing used, makes the refused lines reviewable.",
        ),
    )

    def decide_line(
        self, line: LineFacts, account: AccountFacts, request: RequestFacts, ctx: Context
    ) -> Decision:
        if line.kind in TYPE_A:
            return self._type_a(line, account, request, ctx)
        if line.kind in TYPE_B:
            return self._type_b(line, account, request, ctx)
        if line.kind in TYPE_C:
            return self._type_c(line, request, ctx)
        return ctx.uncovered(line, "AcelleMail")

    # --- Type A ---------------------------------------------------------------------------

    def _type_a(self, line, account, request, ctx):
        if account.status == "suspended_tos":
            return ctx.none(
                line,
                "acelle §1.3",
                None,
                "Subscriptions of an account suspended for a Terms of Service violation are not refunded (§1.3).",
            )
        end = last_day(line.paid, MONEY_BACK_DAYS)
        if line.first_purchase and request.date <= end:
            return ctx.refund(
                line,
                line.amount,
                "acelle §1.1",
                end,
                f"First subscription payment: refunded in full within 14 days of payment, no questions asked (§1.1), until {day(end)}.",
            )
        exception = self._type_a_exception(line, request, ctx)
        if exception is not None:
            return exception
        if not line.first_purchase:
            return ctx.none(
                line,
                "acelle §1.3",
                None,
                "Renewals are not refunded: the 14-day guarantee covers the first purchase only (§1.3).",
            )
        return ctx.none(
            line,
            "acelle §1.3",
            end,
            f"The 14-day money-back window ended on {day(end)}, and the reason given is not one of the exceptions of §1.2 (§1.3).",
        )

    def _type_a_exception(self, line, request, ctx):
        reason = request.reason
        if reason == "unresolved_bug":
            if request.event is None:
                return ctx.none(
                    line,
                    "acelle §1.2",
                    None,
                    "An unresolved bug counts from the date it was reported (§1.2): give the report date.",
                )
            deadline = last_day(request.event, BUG_FIX_DAYS_A)
            if request.date <= deadline:
                return ctx.none(
                    line,
                    "acelle §1.2",
                    deadline,
                    f"We have 7 days from your report to fix a P0/P1 bug (§1.2), until {day(deadline)}: ask again if it is not fixed by then.",
                )
            return ctx.review(
                line,
                line.amount,
                "acelle §1.2",
                None,
                f"A P0/P1 bug not fixed within 7 days of the report qualifies for a refund after review (§1.2), up to {ctx.money(line.amount)}.",
            )
        labels = {
            "not_as_advertised": "The product not working as advertised",
            "billing_error": "A billing error or overcharge",
            "duplicate_charge": "A duplicate charge",
            "outage": "An outage on our side",
        }
        if reason in labels:
            return ctx.review(
                line,
                line.amount,
                "acelle §1.2",
                None,
                f"{labels[reason]} qualifies for a refund after review (§1.2), up to {ctx.money(line.amount)}.",
            )
        return None

    # --- Type B ---------------------------------------------------------------------------

    def _type_b(self, line, account, request, ctx):
        if account.status == "suspended_tos":
            return ctx.none(
                line,
                "acelle §2.3",
                None,
                "Add-ons of an account suspended for a Terms of Service violation are not refunded (§2.3).",
            )
        unused_end = last_day(line.paid, UNUSED_DAYS)
        if request.date <= unused_end and not line.consumed:
            return ctx.refund(
                line,
                line.amount,
                "acelle §2.1",
                unused_end,
                f"Nothing of it used within 7 days of purchase: refunded in full (§2.1), until {day(unused_end)}.",
            )
        if line.kind == "quota_addon":
            if line.activated:
                return ctx.none(
                    line,
                    "acelle §2.2",
                    None,
                    "Storage and API quota are not refunded once activated: the resource was allocated at payment (§2.2).",
                )
            return ctx.none(
                line,
                "acelle §2.2",
                unused_end,
                f"Storage and API quota are refundable only within 7 days of purchase, until {day(unused_end)} (§2.1, §2.2)."
                if request.date > unused_end
                else "Storage and API quota are refunded only while nothing of them was used (§2.1, §2.2).",
            )
        balance_end = last_day(line.paid, BALANCE_DAYS)
        if request.date > balance_end:
            return ctx.none(
                line,
                "acelle §2.3",
                balance_end,
                f"Credit packs are refundable up to 30 days after purchase; that was {day(balance_end)} (§2.3).",
            )
        if not line.units or (line.used and not line.units_used):
            # Used, but how much is not known: staff count the unused part (§2.2).
            return ctx.review(
                line,
                line.amount,
                "acelle §2.2",
                balance_end,
                f"Credit packs: unused credits are refunded at the unit rate within 30 days of purchase (§2.2); how many are left must be checked, up to {ctx.money(line.amount)}.",
            )
        units = line.units
        left = max(units - line.units_used, 0)
        if not left:
            return ctx.none(
                line,
                "acelle §2.2",
                balance_end,
                "Every credit of the pack was used: nothing is left to refund (§2.2).",
            )
        amount = unit_rate(line.amount, units, line.units_used, ctx.digits)
        if not amount:
            return ctx.none(
                line,
                "acelle §2.2",
                balance_end,
                f"The {left:,} unused credits are worth less than the smallest amount we can pay back (§2.2).",
            )
        return ctx.refund(
            line,
            amount,
            "acelle §2.2",
            balance_end,
            f"Credit packs: unused credits are refunded at the unit rate within 30 days of purchase (§2.2); {left:,} of {units:,} credits unused: {ctx.money(amount)}, until {day(balance_end)}.",
        )

    # --- Type C ---------------------------------------------------------------------------

    def _type_c(self, line, request, ctx):
        name = TYPE_C_NAMES[line.kind]
        if not line.delivered:
            return ctx.refund(
                line,
                line.amount,
                "acelle §3.1",
                None,
                f"{name} are not refunded after delivery (§3.1); this one is not delivered yet, so it is refunded in full.",
            )
        reason = request.reason
        if reason == "not_delivered":
            # The trigger is the day the vendor's 7 business days ran out, as for a bug.
            due = add_business_days(line.paid, DELIVERY_BUSINESS_DAYS, ctx.holidays)
            return self._claim(
                line,
                request,
                ctx,
                due,
                f"Delivery later than 7 business days after payment (due {day(due)})",
                not_before=due,
            )
        if reason == "unresolved_bug":
            if request.event is None:
                return ctx.none(
                    line,
                    "acelle §3.2",
                    None,
                    "An unresolved bug counts from the date it was reported (§3.2): give the report date.",
                )
            deadline = last_day(request.event, BUG_FIX_DAYS_C)
            return self._claim(
                line,
                request,
                ctx,
                deadline,
                "A P0 bug unresolved 30 days after the report",
                not_before=deadline,
            )
        if reason in BILLING_REASONS:
            # A charge disputed later counts from then, never from before the payment.
            trigger = max(request.event or line.paid, line.paid)
            label = "A duplicate charge" if reason == "duplicate_charge" else "A billing error"
            return self._claim(line, request, ctx, trigger, label, not_before=None)
        return ctx.none(
            line,
            "acelle §3.1",
            None,
            f"{name} are delivered once and not refunded after delivery (§3.1).",
        )

    def _claim(self, line, request, ctx, trigger, label, *, not_before):
        """§3.2: a claim within 30 days of its triggering event, once the event has passed."""
        if not_before is not None and request.date <= not_before:
            return ctx.none(
                line,
                "acelle §3.2",
                not_before,
                f"{label} gives a claim only once {day(not_before)} has passed (§3.2).",
            )
        end = last_day(trigger, CLAIM_DAYS)
        if request.date > end:
            return ctx.none(
                line,
                "acelle §3.2",
                end,
                f"{label} had to be claimed within 30 days, by {day(end)} (§3.2).",
            )
        return ctx.review(
            line,
            line.amount,
            "acelle §3.2",
            end,
            f"{label} qualifies for a refund after review, with evidence, claimed within 30 days of the event (§3.2), up to {ctx.money(line.amount)}.",
        )

    # --- §4 mixed orders ------------------------------------------------------------------

    def finish(self, decisions, lines, account, request, ctx):
        # §1.3 and §2.3 refuse a suspended account outright; §4 does not undo that.
        if not request.full_order or not lines or account.status == "suspended_tos":
            return decisions
        orders: dict = {}
        for line in lines:
            orders.setdefault(line.order, []).append(line)
        result = dict(decisions)
        for order_lines in orders.values():
            end = last_day(min(line.paid for line in order_lines), FULL_ORDER_DAYS)
            if request.date > end or any(line.consumed for line in order_lines):
                continue
            for line in order_lines:
                if decisions[line.id].outcome in (REFUND, REVIEW, REDIRECT):
                    continue
                result[line.id] = ctx.review(
                    line,
                    line.amount,
                    "acelle §4",
                    end,
                    f"A full-order refund asked within 14 days with nothing used may be granted after review (§4), until {day(end)}: up to {ctx.money(line.amount)}.",
                )
        return result
