"""The engine's plain data: what was bought, who asks, what they ask; what is decided.

No ORM and no clock: the services build these from orders and pass today's date.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

KINDS = (
    "subscription",
    "premium_feature",
    "usage",
    "credit_pack",
    "quota_addon",
    "perpetual_license",
    "plugin",
    "service",
    "support_contract",
    "support_incident",
    "app_subscription",
    "app_one_time",
    "app_usage",
    "app_external",
)
REASONS = (
    "no_longer_needed",
    "not_as_advertised",
    "unresolved_bug",
    "billing_error",
    "duplicate_charge",
    "outage",
    "defective",
    "not_delivered",
    "force_majeure",
    "customer_infrastructure",
)
REASON_LABELS = {
    "no_longer_needed": "No longer needed",
    "not_as_advertised": "Does not work as advertised",
    "unresolved_bug": "A reported bug was not fixed",
    "billing_error": "Billed in error or overcharged",
    "duplicate_charge": "Charged twice",
    "outage": "An outage on our side",
    "defective": "Defective or not working on delivery",
    "not_delivered": "Not delivered",
    "force_majeure": "Force majeure",
    "customer_infrastructure": "A problem with my own infrastructure",
}
REFUND, REVIEW, NONE, REDIRECT = "refund", "review", "none", "redirect"
OUTCOMES = (REFUND, REVIEW, NONE, REDIRECT)


@dataclass(frozen=True, slots=True)
class AccountFacts:
    status: str = "active"  # active | suspended_tos
    partner: str | None = None  # the reseller the account bought through


@dataclass(frozen=True, slots=True)
class LineFacts:
    id: str
    kind: str
    amount: Decimal
    paid: date  # local date of the successful payment
    first_purchase: bool = True
    period: tuple[date, date] | None = None  # [start, end) for recurring kinds
    units: int | None = None
    units_used: int = 0
    activated: bool = False
    delivered: bool = False
    used: bool = False
    trial_end: date | None = None
    refund_days: int | None = None
    defective: bool = False
    description: str = ""
    order: str | None = None  # lines of one order share it; a case file's lines are one order
    refunded: Decimal = Decimal(0)  # paid back on this line by earlier requests, card or credit

    @property
    def consumed(self) -> bool:
        """Anything of it used, consumed, activated or delivered (acelle §4). A usage
        charge exists only because the service was used."""
        return (
            self.used
            or self.units_used > 0
            or self.activated
            or self.delivered
            or self.kind in ("usage", "app_usage")
        )


@dataclass(frozen=True, slots=True)
class RequestFacts:
    date: date  # local date the request was received
    reason: str = "no_longer_needed"
    event: date | None = None  # the triggering event: bug report, failed delivery, charge
    evidence: bool = False  # recorded for staff; never changes an outcome
    full_order: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    line_id: str
    outcome: str
    amount: Decimal
    clause: str
    last_day: date | None  # the last day of the window that applied, if one did
    explanation: str

    def as_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "amount": f"{self.amount}",
            "clause": self.clause,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "explanation": self.explanation,
        }
