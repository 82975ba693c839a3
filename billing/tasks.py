from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=600, max_retries=10)
def request_payment(payment_id: int) -> str:
    """Ask the gateway for a pending payment. Safe to run twice: the idempotency key
    was stored before the first call, and a settled payment is left alone."""
    return services.payment_request(payment_id=payment_id).status


@shared_task
def subscriptions_renew_due() -> int:
    return services.subscriptions_renew_due(now=timezone.now())
