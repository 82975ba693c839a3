"""Refund requests: what the customer asks, what the engine and staff decide, what is
paid out, and the deadlines of the AcelleMail process (§5)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import CURRENCIES, Account
from billing.models import AMOUNT, OrderLine, Payment


class RefundSimulation(OrderLine):
    """The console's entry for the refund policy: its preset, sections and simulator.

    A proxy, so that the console lists it and its permission can be granted to staff.
    """

    class Meta:
        proxy = True
        verbose_name = "refund policy and simulator"
        verbose_name_plural = "refund policy and simulator"


# RefundRequest.OPEN_STATES, for the sweeps' partial indexes (Meta cannot name the class).
_STILL_OPEN = Q(
    state__in=["received", "acknowledged", "in_review", "needs_info", "decided", "paying"]
)


class RefundRequest(models.Model):
    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        IN_REVIEW = "in_review", "In review"
        NEEDS_INFO = "needs_info", "Waiting for your answer"
        DECIDED = "decided", "Decided"
        PAYING = "paying", "Paying out"
        PAID = "paid", "Refunded"
        CREDITED = "credited", "Credited to your account"
        CLOSED = "closed", "Closed"
        WITHDRAWN = "withdrawn", "Withdrawn"

    OPEN_STATES = ("received", "acknowledged", "in_review", "needs_info", "decided", "paying")
    # The choices' labels are the customer's words; staff read these where they differ.
    STAFF_LABELS = {
        "needs_info": "Waiting for the customer's answer",
        "paid": "Refunded to the customer's payment",
        "credited": "Credited to the customer's account",
    }

    class Outcome(models.TextChoices):
        NONE = "", "—"
        APPROVED = "approved", "Approved"
        PARTLY_APPROVED = "partly_approved", "Partly approved"
        DENIED = "denied", "Denied"

    class Channel(models.TextChoices):
        WEB = "web", "Billing page"
        API = "api", "API"
        EMAIL = "email", "Email"
        STAFF = "staff", "Staff"

    class Payout(models.TextChoices):
        ORIGINAL = "original", "Back to the original payment method"
        CREDIT = "credit", "As account credit"

    number = models.CharField(max_length=20, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="refund_requests")
    order = models.ForeignKey(
        "billing.Order", on_delete=models.PROTECT, related_name="refund_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    preset = models.CharField(max_length=20)
    state = models.CharField(max_length=20, choices=State.choices, default=State.RECEIVED)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True, default="")
    reason = models.CharField(max_length=40)
    event_on = models.DateField(null=True, blank=True)
    text = models.TextField(blank=True)
    full_order = models.BooleanField(default=False)
    payout_method = models.CharField(max_length=10, choices=Payout.choices)
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    approved_total = models.DecimalField(**AMOUNT, default=0)
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Deadlines (vendor business days, end of day in the vendor's zone): acknowledge by
    # the 2nd, decide by the 5th after receipt; pay out by the 14th after approval.
    ack_due_at = models.DateTimeField()
    decide_due_at = models.DateTimeField()
    payout_from = models.DateField(null=True, blank=True)  # the 7th business day
    payout_due_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)  # the clock stops in needs_info
    # The earliest deadline still to meet: the queue's order and the sweep's index.
    next_deadline = models.DateTimeField(null=True, blank=True)
    reminded = models.JSONField(default=list, blank=True)  # deadlines reminded of
    breached = models.JSONField(default=list, blank=True)  # deadlines breached, once each
    # When the deadline sweep next has something to do (a reminder or a breach still to
    # record); None when nothing is left. The sweep selects on it alone, so finished
    # reminders and breaches are never read again (services._sweep_at).
    sweep_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_deadline"],
                name="refund_open_next_deadline",
                condition=_STILL_OPEN,
            ),
            models.Index(
                fields=["sweep_at"],
                name="refund_open_sweep_at",
                condition=_STILL_OPEN,
            ),
            # The account's requests newest first (Billing > Refunds, the overview).
            models.Index(
                fields=["account", "-received_at", "-id"],
                include=["state"],
                name="refund_account_by_date",
            ),
            # The console's queue (RefundRequestAdmin.ordering: the next deadline first,
            # none last, then id), its state filter, and its breached filter and tile: each
            # page of the queue reads its rows in index order.
            models.Index(fields=["next_deadline", "id"], name="refund_console_queue"),
            models.Index(fields=["state", "next_deadline", "id"], name="refund_console_state"),
            models.Index(
                fields=["next_deadline", "id"],
                name="refund_console_breached",
                condition=~Q(breached=[]),
            ),
        ]

    def __str__(self):
        return self.number

    @property
    def staff_state_label(self) -> str:
        return self.STAFF_LABELS.get(self.state, self.get_state_display())

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def reason_label(self) -> str:
        from .policy import REASON_LABELS

        return REASON_LABELS.get(self.reason, self.reason)


class RefundLine(models.Model):
    """One purchase asked about: the engine's decision at arrival, then staff's."""

    class Decision(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"

    request = models.ForeignKey(RefundRequest, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="+")
    engine_outcome = models.CharField(max_length=10)
    engine_amount = models.DecimalField(**AMOUNT)  # the ceiling staff may approve
    clause = models.CharField(max_length=40)
    last_day = models.DateField(null=True, blank=True)
    explanation = models.TextField()
    decision = models.CharField(max_length=10, choices=Decision.choices, default="pending")
    approved_amount = models.DecimalField(**AMOUNT, null=True, blank=True)
    deny_reason = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["request", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "order_line"], name="refund_line_once_per_request"
            ),
            models.CheckConstraint(
                condition=Q(approved_amount__isnull=True)
                | Q(approved_amount__gte=0, approved_amount__lte=models.F("engine_amount")),
                name="refund_line_approved_within_ceiling",
            ),
        ]

    def __str__(self):
        return f"{self.request.number}: {self.order_line.description}"


class RefundMessage(models.Model):
    request = models.ForeignKey(RefundRequest, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_staff = models.BooleanField(default=False)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.request.number}: message {self.pk}"


def evidence_path(instance, filename):
    return f"refund-evidence/{instance.request.account_id}/{instance.request.number}/{filename}"


class RefundEvidence(models.Model):
    request = models.ForeignKey(RefundRequest, on_delete=models.CASCADE, related_name="evidence")
    file = models.FileField(upload_to=evidence_path)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return self.name


class RefundPayout(models.Model):
    """Money moved for a decided request: one row per way it goes (card, credit).

    The key is stored before the gateway is called; one succeeded payout per request
    and method is all the database allows.
    """

    class Method(models.TextChoices):
        STRIPE = "stripe", "Refund on the Stripe charge"
        MANUAL = "manual", "Payout recorded by staff"
        CREDIT = "credit", "Account credit"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    request = models.ForeignKey(RefundRequest, on_delete=models.PROTECT, related_name="payouts")
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="refund_payouts"
    )
    method = models.CharField(max_length=10, choices=Method.choices)
    amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    idempotency_key = models.CharField(max_length=80, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default="pending")
    reference = models.CharField(max_length=120, blank=True)
    error = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Which purchases this payout pays back, {order line id: "amount"}: billing records
    # them on the lines (billing.LineRefund) when the payout succeeds.
    allocation = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_payout_positive"),
            models.UniqueConstraint(
                fields=["request", "method"], name="refund_payout_once_per_method"
            ),
        ]
        indexes = [
            # The console's "payout pending / failed" filter and tiles: the few payouts
            # still open, not every payout ever made.
            models.Index(
                fields=["status", "request"],
                name="refund_payout_console_open",
                condition=Q(status__in=["pending", "failed"]),
            ),
        ]

    def __str__(self):
        return f"{self.request.number}: {self.get_method_display()} {self.amount} {self.currency}"


def raw_mail_path(instance, filename):  # kept for the migrations that name it
    return f"refund-mail/{instance.received_at:%Y/%m}/{filename}"
