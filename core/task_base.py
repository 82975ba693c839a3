"""The portal's Celery task class (config/celery.py): a message from the outbox that
already ran to its end is not run a second time.

Delivery is at least once: the relay publishes a message again when the process that
published it died before marking it, and the broker hands a job out again when its
worker did not acknowledge it. A task that finished marks its message done (after its
work: a worker killed in between means a second run, never none), and a later copy of
the same message stops here."""

import logging

from celery.contrib.django.task import DjangoTask
from django.utils import timezone

logger = logging.getLogger(__name__)

# The Celery task id of every outbox message; other jobs (beat's, a task's own retry
# of another id) skip the look-up.
TASK_ID_PREFIX = "outbox-"


class OutboxTask(DjangoTask):
    """Celery's Django task class, which skips an outbox message already done."""

    def __call__(self, *args, **kwargs):
        task_id = self.request.id or ""
        if not task_id.startswith(TASK_ID_PREFIX):
            return super().__call__(*args, **kwargs)
        # Not at the top: Celery imports this class before Django's apps are ready.
        from .models import OutboxMessage

        if OutboxMessage.objects.filter(task_id=task_id, done_at__isnull=False).exists():
            logger.info("%s[%s] already ran to its end: not run again", self.name, task_id)
            return None
        result = super().__call__(*args, **kwargs)
        OutboxMessage.objects.filter(task_id=task_id, done_at__isnull=True).update(
            done_at=timezone.now()
        )
        return result
