from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def raw_mail_path(instance, filename):
    return f"mail/{instance.mailbox}/{instance.received_at:%Y/%m}/{filename}"


class InboundMail(models.Model):
    """A mail to one of the portal's mailboxes, stored as received before anything else
    happens to it. The mailbox's handler (refunds, support) decides what it becomes."""

    class Mailbox(models.TextChoices):
        REFUNDS = "refunds", "Billing (refund requests)"
        SUPPORT = "support", "Support"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        REQUEST = "request", "Became a refund request"
        OPENED = "opened", "Opened an incident"
        REPLY = "reply", "Added to a thread"
        CONFIRM = "confirm", "Awaiting the account's confirmation"
        HELD = "held", "Held: sender not proven"
        TRIAGE = "triage", "In triage"
        ANSWERED = "answered", "Answered"
        AUTO = "auto", "Auto-reply or bounce (not answered)"
        IGNORED = "ignored", "Ignored"
        DONE = "done", "Completed by staff"
        DISMISSED = "dismissed", "Dismissed"

    mailbox = models.CharField(max_length=10, choices=Mailbox.choices, default="refunds")
    message_id = models.CharField(max_length=998, unique=True)  # the header, or sha256:…
    source = models.CharField(max_length=20)  # maildir, mbox, imap, webhook, staff
    raw = models.FileField(upload_to=raw_mail_path)
    size = models.PositiveIntegerField()
    sender = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default="received")
    reasons = models.JSONField(default=list, blank=True)  # why it is in triage, held...
    parsed = models.JSONField(default=dict, blank=True)

    class Proof(models.TextChoices):
        NONE = "", "Not proven"
        DMARC = "dmarc", "DMARC pass (trusted server)"
        DKIM = "dkim", "Aligned DKIM pass (trusted server)"
        TOKEN = "token", "The thread's reply address"
        PROVIDER = "provider", "The provider's verdict"

    # How the sender was proven (inbox.proof); "" when it was not.
    proof = models.CharField(max_length=10, blank=True, choices=Proof.choices)
    # The number of the thread it opened or joined (RR-…, INC-…): replies that quote
    # this mail's Message-ID thread to it.
    thread = models.CharField(max_length=30, blank=True, db_index=True)
    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The answer to the sender, written with the outcome and sent once it is committed.
    answer_subject = models.CharField(max_length=200, blank=True)
    answer = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    # A link to confirm an unproven request was sent to this user (never to the sender).
    confirm_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirm_sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["mailbox", "status", "-received_at"], name="inbound_mail_queue"),
            # The stale sweep and the confirmation expiry, whatever the mailbox.
            models.Index(
                fields=["received_at"],
                name="inbound_mail_unprocessed",
                condition=Q(status="received"),
            ),
            models.Index(
                fields=["received_at"],
                name="inbound_mail_confirm_age",
                condition=Q(status="confirm"),
            ),
            # The console's list (newest first) and its status filter (the triage, held and
            # awaiting-confirmation tiles), read in index order.
            models.Index(fields=["-received_at", "-id"], name="inbound_mail_console_recent"),
            models.Index(
                fields=["status", "-received_at", "-id"], name="inbound_mail_console_status"
            ),
        ]

    def __str__(self):
        return f"{self.sender or 'unknown sender'}: {self.subject[:60]}"
