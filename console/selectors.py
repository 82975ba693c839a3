"""What the console's dashboard and refunds report read: a fixed number of aggregate
queries, however many rows there are."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncMonth
from django.urls import reverse

from accounts.admin import deadline_q
from billing.models import Order, Product
from billing.money import Money
from inbox.models import InboundMail
from marketplace.models import Earning
from refunds.models import RefundLine, RefundPayout, RefundRequest
from refunds.policy import REASON_LABELS
from support.models import Incident


@dataclass
class Tile:
    label: str
    count: int
    url: str
    urgent: bool = False  # shown in red when there is any


@dataclass
class Section:
    title: str
    tiles: list[Tile]
    rows: list = field(default_factory=list)  # incidents by next deadline


def _changelist(model, query: str = "") -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist") + query


def _counts(querysets: dict) -> dict:
    """{name: the queryset's count}, in one query of one scalar subquery each, so that
    each count reads its own index (the queue's by deadline, its breached one) alone,
    never the table's rows."""
    columns, params = [], []
    for name, queryset in querysets.items():
        sql, args = queryset.order_by().values("pk").query.sql_with_params()
        columns.append(f"(SELECT COUNT(*) FROM ({sql}) AS counted) AS {name}")  # noqa: S608
        params.extend(args)
    with connection.cursor() as cursor:
        # Each part is a queryset's own compiled SQL, each name one of DEADLINES; every
        # value is a parameter.
        cursor.execute("SELECT " + ", ".join(columns), params)
        return dict(zip(querysets, cursor.fetchone(), strict=True))


def _deadline_counts(queryset, *, now, tz) -> dict:
    return _counts(
        {which: queryset.filter(deadline_q(which, now=now, tz=tz)) for which in DEADLINES}
    )


DEADLINES = ("due_today", "overdue", "breached")
DEADLINE_LABELS = {"due_today": "Due today", "overdue": "Overdue", "breached": "Breached"}


def _deadline_tiles(model, counts: dict) -> list[Tile]:
    return [
        Tile(
            DEADLINE_LABELS[which],
            counts[which],
            _changelist(model, f"?deadline={which}"),
            urgent=which != "due_today",
        )
        for which in DEADLINES
    ]


def dashboard(*, user, now, tz, incidents_shown: int = 5) -> list[Section]:
    """The day's work, each queue a count with a link to it filtered; only the queues
    the user may see."""
    sections = []
    if user.has_perm("refunds.view_refundrequest"):
        counts = _deadline_counts(RefundRequest.objects.all(), now=now, tz=tz)
        # Requests with a payout pending or failed, from the few such payouts.
        open_payouts = (RefundPayout.Status.PENDING, RefundPayout.Status.FAILED)
        payouts = RefundPayout.objects.filter(status__in=open_payouts).aggregate(
            **{
                status: Count("request", filter=Q(status=status), distinct=True)
                for status in open_payouts
            }
        )
        sections.append(
            Section(
                "Refund requests",
                [
                    *_deadline_tiles(RefundRequest, counts),
                    Tile(
                        "Payout pending",
                        payouts["pending"],
                        _changelist(RefundRequest, "?payouts__status__exact=pending"),
                    ),
                    Tile(
                        "Payout failed",
                        payouts["failed"],
                        _changelist(RefundRequest, "?payouts__status__exact=failed"),
                        urgent=True,
                    ),
                ],
            )
        )
    if user.has_perm("support.view_incident"):
        counts = _deadline_counts(Incident.objects.all(), now=now, tz=tz)
        upcoming = list(
            Incident.objects.filter(next_deadline__isnull=False)
            .select_related("account")
            .order_by("next_deadline", "pk")[:incidents_shown]
        )
        sections.append(
            Section("Support incidents", _deadline_tiles(Incident, counts), rows=upcoming)
        )
    if user.has_perm("inbox.view_inboundmail"):
        Status = InboundMail.Status
        statuses = (Status.TRIAGE, Status.CONFIRM, Status.HELD)
        counts = InboundMail.objects.filter(status__in=statuses).aggregate(
            **{status: Count("pk", filter=Q(status=status)) for status in statuses}
        )
        labels = {
            Status.TRIAGE: "In triage",
            Status.CONFIRM: "Awaiting the account's confirmation",
            Status.HELD: "Held: sender not proven",
        }
        sections.append(
            Section(
                "Inbound mail",
                [
                    Tile(
                        labels[status],
                        counts[status],
                        _changelist(InboundMail, f"?status__exact={status}"),
                        urgent=status == Status.TRIAGE,
                    )
                    for status in statuses
                ],
            )
        )
    tiles = []
    if user.has_perm("billing.view_order"):
        waiting = Order.objects.filter(status=Order.Status.AWAITING_PAYMENT).count()
        tiles.append(
            Tile(
                "Orders awaiting a bank transfer",
                waiting,
                _changelist(Order, "?status__exact=awaiting_payment"),
            )
        )
    if user.has_perm("marketplace.view_earning"):
        # Developers are paid by hand each month: what is available and not paid yet.
        due = (
            Earning.objects.filter(status=Earning.Status.AVAILABLE)
            .values("developer")
            .distinct()
            .count()
        )
        tiles.append(
            Tile(
                "Developers with earnings to pay out",
                due,
                _changelist(Earning, "?status__exact=available"),
            )
        )
    if tiles:
        sections.append(Section("Payments and payouts", tiles))
    return sections


# --- the refunds report ----------------------------------------------------------------

OVERRIDDEN = (
    # Staff gave what the engine refused, or less (or nothing) of what it granted.
    Q(engine_outcome__in=["none", "redirect"], decision=RefundLine.Decision.APPROVED)
    | Q(engine_outcome="refund", decision=RefundLine.Decision.DENIED)
    | Q(engine_outcome="refund", decision=RefundLine.Decision.APPROVED)
    & ~Q(approved_amount=F("engine_amount"))
)


def _month(value) -> str:
    return f"{value:%Y-%m}"


def refunds_report(*, tz) -> dict:
    """The refunds report's figures, each from one aggregate query: by month (requests,
    asked, approved, breaches, deadlines kept), by product kind, by reason, and how often
    staff overrode the engine. Months in the vendor's zone; amounts per currency."""
    month = TruncMonth("received_at", tzinfo=tz)
    by_month = list(
        RefundRequest.objects.annotate(month=month)
        .values("month")
        .annotate(
            requests=Count("pk"),
            breached=Count("pk", filter=~Q(breached=[])),
            ack_on_time=Count("pk", filter=Q(acknowledged_at__lte=F("ack_due_at"))),
            ack_late=Count("pk", filter=Q(acknowledged_at__gt=F("ack_due_at"))),
            decided_on_time=Count("pk", filter=Q(decided_at__lte=F("decide_due_at"))),
            decided_late=Count("pk", filter=Q(decided_at__gt=F("decide_due_at"))),
        )
        .order_by("month")
    )
    amounts = list(
        RefundLine.objects.annotate(month=TruncMonth("request__received_at", tzinfo=tz))
        .values("month", "request__currency")
        .annotate(asked=Sum("order_line__amount"), approved=Sum("approved_amount"))
        .order_by("month", "request__currency")
    )
    by_kind = list(
        RefundLine.objects.values("order_line__kind")
        .annotate(
            lines=Count("pk"),
            approved=Count("pk", filter=Q(decision=RefundLine.Decision.APPROVED)),
            denied=Count("pk", filter=Q(decision=RefundLine.Decision.DENIED)),
        )
        .order_by("order_line__kind")
    )
    by_reason = list(
        RefundRequest.objects.values("reason").annotate(requests=Count("pk")).order_by("reason")
    )
    engine = RefundLine.objects.exclude(decision=RefundLine.Decision.PENDING).aggregate(
        decided=Count("pk"),
        review=Count("pk", filter=Q(engine_outcome="review")),
        overridden=Count("pk", filter=OVERRIDDEN),
    )
    requests = sum(row["requests"] for row in by_month)
    breached = sum(row["breached"] for row in by_month)
    # The engine decided the lines it did not leave to staff ("review"): of those, how many
    # staff changed.
    engine_decided = engine["decided"] - engine["review"]
    currencies = sorted({row["request__currency"] for row in amounts})
    months = [_month(row["month"]) for row in by_month]
    rates = [
        round(100 * row["breached"] / row["requests"], 1) if row["requests"] else 0
        for row in by_month
    ]
    return {
        "rows": [
            {**row, "month": label, "breach_rate": rate}
            for row, label, rate in zip(by_month, months, rates, strict=True)
        ],
        "months": months,
        "requests": [row["requests"] for row in by_month],
        "breached": [row["breached"] for row in by_month],
        "breach_rate": rates,
        "ack": {
            "on_time": [row["ack_on_time"] for row in by_month],
            "late": [row["ack_late"] for row in by_month],
        },
        "decide": {
            "on_time": [row["decided_on_time"] for row in by_month],
            "late": [row["decided_late"] for row in by_month],
        },
        "amounts": {
            currency: {
                "asked": _per_month(amounts, months, currency, "asked"),
                "approved": _per_month(amounts, months, currency, "approved"),
            }
            for currency in currencies
        },
        "kinds": {
            "labels": [_label(Product.Kind, row["order_line__kind"]) for row in by_kind],
            "lines": [row["lines"] for row in by_kind],
            "approved": [row["approved"] for row in by_kind],
            "denied": [row["denied"] for row in by_kind],
        },
        "reasons": {
            "labels": [REASON_LABELS.get(row["reason"], row["reason"]) for row in by_reason],
            "requests": [row["requests"] for row in by_reason],
        },
        "totals": {
            "requests": requests,
            "breached": breached,
            "breach_rate": round(100 * breached / requests, 1) if requests else 0,
            "engine_decided": engine_decided,
            "overridden": engine["overridden"],
            "override_rate": (
                round(100 * engine["overridden"] / engine_decided, 1) if engine_decided else 0
            ),
            "review": engine["review"],
        },
    }


def _label(choices, value) -> str:
    return choices(value).label if value in choices.values else value


def _per_month(rows, months, currency, key) -> list[str]:
    """One amount a month, rounded to the currency's minor unit (as a string for JSON)."""
    found = {
        _month(row["month"]): row[key] or Decimal(0)
        for row in rows
        if row["request__currency"] == currency
    }
    return [str(Money(found.get(month, 0), currency).rounded().amount) for month in months]
