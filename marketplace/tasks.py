"""Thin jobs: deliver a webhook, mail a trial reminder or a cap alert, the beat sweeps."""

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.tasks import MAIL_RETRY
from core import outbox

from . import emails, services
from .models import Installation, WebhookDelivery
from .webhooks import post


def backoff(attempt: int) -> int:
    """Seconds before the next try: 30 s, 2 min, 8 min... at most an hour (the outbox
    relay sends it at its first run after that, within a minute)."""
    return min(30 * 4 ** (attempt - 1), 3600)


@shared_task(acks_late=True)
def deliver_webhook(delivery_id: int) -> str:
    """One try; a failure schedules the next with back-off, and after the last it is
    marked failed (staff can replay it). Each try and its answer are kept."""
    delivery = WebhookDelivery.objects.select_related("app").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return "skipped"
    status, body = post(
        delivery.url,
        payload=delivery.payload,
        secret=delivery.app.webhook_secret,
        event_id=delivery.event_id,
        timeout=settings.MARKETPLACE_WEBHOOK_TIMEOUT,
    )
    delivery.attempts += 1
    delivery.last_attempt_at = timezone.now()
    delivery.response_status = status or None
    delivery.response_body = body
    delivery.error = "" if 200 <= status < 300 else (f"HTTP {status}" if status else body[:300])
    if 200 <= status < 300:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at = delivery.last_attempt_at
    elif delivery.attempts >= settings.MARKETPLACE_WEBHOOK_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
    with transaction.atomic():
        delivery.save()
        if delivery.status == WebhookDelivery.Status.PENDING:
            # Through the outbox, not a broker countdown: Redis would hand a message held
            # longer than its visibility timeout to a second worker.
            outbox.enqueue(deliver_webhook, delivery.pk, countdown=backoff(delivery.attempts))
    return delivery.status


@shared_task(**MAIL_RETRY)
def send_trial_reminder(installation_id: int, mail: int) -> bool:
    inst = (
        Installation.objects.select_related("app", "plan", "account")
        .filter(pk=installation_id)
        .first()
    )
    if inst is None or inst.state != Installation.State.TRIALING:
        return False
    emails.send_trial_reminder(installation=inst, last=mail == 2)
    return True


@shared_task(**MAIL_RETRY)
def send_cap_alert(installation_id: int, level: int, month: str) -> bool:
    inst = (
        Installation.objects.select_related("app", "plan", "account")
        .filter(pk=installation_id)
        .first()
    )
    if inst is None or str(inst.usage_month) != month:
        return False
    emails.send_cap_alert(installation=inst, level=level)
    return True


@shared_task
def trials_remind() -> int:
    return services.trials_remind(now=timezone.now())


@shared_task
def earnings_release() -> int:
    return services.earnings_release(now=timezone.now())
