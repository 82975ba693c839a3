"""1Cloud AI CRM refund policy (seeds/onecloud-refund-policy.txt)."""

from ..counting import day, last_day, prorated
from ..engine import Context, Preset, Section
from ..types import AccountFacts, Decision, LineFacts, RequestFacts

WINDOW_DAYS = 30  # onecloud §1
APP_DAYS = 3  # onecloud §4


class OneCloud(Preset):
    id = "onecloud"
    title = "1Cloud AI CRM refund policy"
    source = "onecloud-refund-policy.txt"
    sections = (
        Section(
            "onecloud §1",
            "CRM System Subscription",
            "The first payment is refunded in full within 30 days of the first day of the first billing cycle; renewals and later requests are not.",
        ),
        Section(
            "onecloud §2",
            "Premium Feature Subscriptions",
            "Premium feature fees are non-refundable.",
        ),
        Section(
            "onecloud §3",
            "Transactional & Usage-Based Charges",
            "Usage-based charges are non-refundable.",
        ),
        Section(
            "onecloud §4",
            "App Marketplace",
            "App subscriptions: prorated refund within 3 days of the first payment (or the developer's own window), never for a cycle after a free trial; one-time apps only if defective, reported within 3 days; usage apps only for a billing error reported within 3 days; apps paid outside the portal: the developer decides.",
        ),
    )

    def decide_line(
        self, line: LineFacts, account: AccountFacts, request: RequestFacts, ctx: Context
    ) -> Decision:
        handler = getattr(self, f"_{line.kind}", None)
        if handler is None:
            return ctx.uncovered(line, "1Cloud")
        return handler(line, request, ctx)

    def terms(self, kind: str, *, refund_days: int | None = None, trial_days: int = 0) -> str:
        days = refund_days if refund_days is not None else APP_DAYS
        if kind == "app_subscription":
            if trial_days:
                return (
                    f"Cancel during the {trial_days}-day free trial and nothing is charged. "
                    "No refunds once the paid cycle after your trial begins (§4)."
                )
            if days == 0:
                return "No refunds: the developer offers no refund window (§4)."
            return (
                f"Cancel within {days} day{'s' if days != 1 else ''} of your first payment "
                "for a prorated refund (§4)."
            )
        if kind == "app_one_time":
            return (
                "No refunds for a one-time or lifetime licence, unless it is defective or does "
                f"not work on delivery: tell us within {APP_DAYS} days of purchase (§4)."
            )
        if kind == "app_usage":
            return (
                "Usage charges are non-refundable. If you believe a charge is wrong, tell us "
                f"within {APP_DAYS} days of the charge and we investigate (§4)."
            )
        if kind == "app_external":
            return "Paid outside 1Cloud AI CRM: ask the app's developer for refunds (§4)."
        return super().terms(kind, refund_days=refund_days, trial_days=trial_days)

    def _subscription(self, line, request, ctx):
        clause = "onecloud §1"
        if not line.first_purchase:
            return ctx.none(
                line,
                clause,
                None,
                "CRM subscription renewals are not refunded (§1): only the first payment is, within 30 days.",
            )
        start = line.period[0] if line.period else line.paid
        end = last_day(start, WINDOW_DAYS)
        if request.date <= end:
            return ctx.refund(
                line,
                line.amount,
                clause,
                end,
                f"CRM subscription: the first payment is refunded in full within 30 days of the first day of the first billing cycle (§1), until {day(end)}.",
            )
        return ctx.none(
            line,
            clause,
            end,
            f"CRM subscription: the 30-day refund window of §1 ended on {day(end)}.",
        )

    def _premium_feature(self, line, request, ctx):
        return ctx.none(
            line,
            "onecloud §2",
            None,
            "Premium feature subscriptions are non-refundable (§2); you may cancel at the end of the paid period.",
        )

    def _usage(self, line, request, ctx):
        return ctx.none(
            line,
            "onecloud §3",
            None,
            "Usage-based charges are final once the service was delivered (§3).",
        )

    def _app_subscription(self, line, request, ctx):
        clause = "onecloud §4"
        if line.trial_end is not None:
            return ctx.none(
                line,
                clause,
                None,
                "App subscriptions: a paid cycle that follows a free trial is not refunded (§4).",
            )
        days = line.refund_days if line.refund_days is not None else APP_DAYS
        end = last_day(line.paid, days)
        if not line.first_purchase:
            return ctx.none(
                line,
                clause,
                None,
                "App subscriptions: only the initial purchase can be refunded (§4).",
            )
        if request.date > end:
            return ctx.none(
                line,
                clause,
                end,
                f"App subscriptions: the {days}-day refund window of §4 ended on {day(end)}.",
            )
        amount = (
            prorated(line.amount, line.period, request.date, ctx.digits)
            if line.period
            else line.amount
        )
        return ctx.refund(
            line,
            amount,
            clause,
            end,
            f"App subscriptions: cancelled within {days} days of purchase, the unused part of the cycle is refunded pro rata (§4): {ctx.money(amount)}."
            if line.period
            else f"App subscriptions: cancelled within {days} days of purchase, the payment is refunded (§4): {ctx.money(amount)}.",
        )

    def _app_one_time(self, line, request, ctx):
        clause = "onecloud §4"
        end = last_day(line.paid, APP_DAYS)
        claimed = line.defective or request.reason in ("defective", "not_delivered")
        if claimed and request.date <= end:
            return ctx.review(
                line,
                line.amount,
                clause,
                end,
                f"One-time apps are refunded only if defective on delivery, reported within 3 days (§4): our team checks the claim, up to {ctx.money(line.amount)}.",
            )
        if claimed:
            return ctx.none(
                line,
                clause,
                end,
                f"One-time apps: a defect had to be reported within 3 days of purchase, by {day(end)} (§4).",
            )
        return ctx.none(
            line,
            clause,
            None,
            "One-time and lifetime app licences are not refunded unless defective on delivery (§4).",
        )

    def _app_usage(self, line, request, ctx):
        clause = "onecloud §4"
        end = last_day(line.paid, APP_DAYS)  # "within 3 days of the charge": this line
        if request.reason in ("billing_error", "duplicate_charge") and request.date <= end:
            return ctx.review(
                line,
                line.amount,
                clause,
                end,
                f"Usage-based app charges are final, but a billing error reported within 3 days of the charge is investigated (§4), up to {ctx.money(line.amount)}.",
            )
        return ctx.none(line, clause, None, "Usage-based app charges are non-refundable (§4).")

    def _app_external(self, line, request, ctx):
        return ctx.redirect(
            line,
            "onecloud §4",
            "This app was paid outside 1Cloud AI CRM: ask its developer for a refund (§4).",
        )
