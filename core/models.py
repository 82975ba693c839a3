import uuid

from django.db import models
from django.db.models import Q

from .task_base import TASK_ID_PREFIX


def new_task_id() -> str:
    return f"{TASK_ID_PREFIX}{uuid.uuid4()}"


class OutboxMessage(models.Model):
    """A job a change asked for, written in the change's transaction (core.outbox).

    Pending until the broker took it (`sent_at`); `done_at` is set when the task ran to
    its end, so a second delivery of the same message is skipped."""

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    task_id = models.CharField(max_length=64, unique=True, default=new_task_id, editable=False)
    created_at = models.DateTimeField()
    next_try_at = models.DateTimeField(help_text="The relay leaves the message alone until then.")
    sent_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = "outbox message"
        indexes = [
            models.Index(
                fields=["created_at", "id"],
                name="outbox_pending",
                condition=Q(sent_at__isnull=True),
            ),
            # The relay's idle run: no pending message due, however many wait for later.
            models.Index(
                fields=["next_try_at"], name="outbox_pending_due", condition=Q(sent_at__isnull=True)
            ),
            models.Index(fields=["sent_at"], name="outbox_sent"),
        ]

    def __str__(self) -> str:
        return f"{self.task} #{self.pk}"

    @property
    def pending(self) -> bool:
        return self.sent_at is None
