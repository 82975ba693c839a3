"""Billing tables. This first part: the account's credit ledger."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import CURRENCIES, Account

AMOUNT = {"max_digits": 14, "decimal_places": 4}


class AppendOnlyError(Exception):
    pass


class LedgerEntry(models.Model):
    """One line of the account's credit ledger, in one currency. Never changed.

    `balance_after` is the running balance: the database refuses a negative one,
    and a unique (account, currency, sequence) makes two concurrent appends on
    the same balance impossible (the second one fails and is retried or refused).
    """

    class Kind(models.TextChoices):
        SEAT_CREDIT = "seat_credit", "Credit for seats removed"
        REFUND_CREDIT = "refund_credit", "Refund paid as account credit"
        ADJUSTMENT = "adjustment", "Adjustment by staff"
        APPLIED = "applied", "Applied to a charge"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="ledger_entries")
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    sequence = models.PositiveIntegerField()
    amount = models.DecimalField(**AMOUNT)
    balance_after = models.DecimalField(**AMOUNT)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.CharField(max_length=300)
    reference = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["account_id", "currency", "sequence"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "currency", "sequence"], name="ledger_sequence_unique"
            ),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="ledger_balance_not_negative"
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
        ]

    def __str__(self):
        return f"{self.account} {self.currency} #{self.sequence}: {self.amount:+}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Ledger entries are never changed; post a correcting entry.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Ledger entries are never deleted; post a correcting entry.")
