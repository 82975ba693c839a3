"""Support incidents (1CRM terms: the designated contact, incidents per licensed users,
extra incidents billed) and the service levels customers are promised."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account


class Incident(models.Model):
    class State(models.TextChoices):
        AWAITING_PAYMENT = "awaiting_payment", "Awaiting payment of the extra incident"
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        WAITING = "waiting_on_customer", "Waiting for your answer"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"
        DECLINED = "declined", "Declined (out of scope)"

    ACTIVE_STATES = ("open", "in_progress", "waiting_on_customer")
    # The choices' labels are the customer's words; staff read these where they differ.
    STAFF_LABELS = {"waiting_on_customer": "Waiting for the customer's answer"}

    class Severity(models.TextChoices):
        P1 = "P1", "P1 — the system is down"
        P2 = "P2", "P2 — a major function does not work"
        P3 = "P3", "P3 — a minor problem, with a workaround"
        P4 = "P4", "P4 — a question about use"

    class Scope(models.TextChoices):
        STANDARD = "standard", "End-user issue with the standard product"
        DEVELOPER = "developer", "Developer or customisation question"
        TRAINING = "training", "Training"
        IMPLEMENTATION = "implementation", "Implementation or installation"

    class Billing(models.TextChoices):
        QUOTA = "quota", "Counted in this year's quota"
        BILLED = "billed", "Billed as an extra incident"
        FREE = "free", "Free (not counted)"

    class Channel(models.TextChoices):
        WEB = "web", "Support page"
        API = "api", "API"
        EMAIL = "email", "Email"

    number = models.CharField(max_length=20, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="incidents")
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    subject = models.CharField(max_length=200)
    description = models.TextField()
    severity = models.CharField(max_length=2, choices=Severity.choices)
    scope = models.CharField(max_length=20, choices=Scope.choices, default="standard")
    state = models.CharField(max_length=20, choices=State.choices, default="open")
    billing = models.CharField(max_length=10, choices=Billing.choices, default="quota")
    support_year_start = models.DateField()  # the support year it counts in
    seats_at_open = models.PositiveIntegerField()  # licensed users when it was opened
    order = models.ForeignKey(
        "billing.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    first_response_at = models.DateTimeField(null=True, blank=True)
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    update_due_at = models.DateTimeField(null=True, blank=True)
    next_deadline = models.DateTimeField(null=True, blank=True)
    breached = models.JSONField(default=list, blank=True)
    # The next deadline while its breach is still to record, else None: the sweep selects
    # on it, so a breach already escalated is not read again (services._sweep_at).
    sweep_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reopened = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_deadline"],
                name="incident_active_next_deadline",
                condition=Q(state__in=["open", "in_progress", "waiting_on_customer"]),
            ),
            models.Index(
                fields=["sweep_at"],
                name="incident_active_sweep_at",
                condition=Q(state__in=["open", "in_progress", "waiting_on_customer"]),
            ),
            models.Index(fields=["account", "support_year_start"], name="incident_account_year"),
            # The console's queue (IncidentAdmin.ordering: the next deadline first, none
            # last, then id), its state filter, and its breached filter and tile.
            models.Index(fields=["next_deadline", "id"], name="incident_console_queue"),
            models.Index(fields=["state", "next_deadline", "id"], name="incident_console_state"),
            models.Index(
                fields=["next_deadline", "id"],
                name="incident_console_breached",
                condition=~Q(breached=[]),
            ),
        ]

    def __str__(self):
        return f"{self.number}: {self.subject}"

    @property
    def staff_state_label(self) -> str:
        return self.STAFF_LABELS.get(self.state, self.get_state_display())


class IncidentMessage(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_staff = models.BooleanField(default=False)
    internal = models.BooleanField(default=False)  # a staff note the customer never sees
    body = models.TextField()
    message_id = models.CharField(max_length=998, blank=True)  # of the mail it came in
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message_id"],
                condition=~Q(message_id=""),
                name="incident_message_mail_once",
            )
        ]

    def __str__(self):
        return f"{self.incident.number}: message {self.pk}"


def attachment_path(instance, filename):
    return f"support/{instance.incident.number}/{filename}"


class IncidentAttachment(models.Model):
    """A file a customer sent by mail with an incident or a reply, kept after the same
    checks as refund evidence (accounts.uploads: type from content, size, count)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(
        IncidentMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(upload_to=attachment_path)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return self.name


class MaintenanceNotice(models.Model):
    """Planned maintenance staff publish on the service-level page."""

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    published = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="maintenance_ends_after_start"
            )
        ]

    def __str__(self):
        return self.title
