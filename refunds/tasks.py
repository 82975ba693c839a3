"""Thin jobs for refund requests: look a row up, call a service or send its mail."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from accounts.tasks import MAIL_RETRY

from . import emails, services
from .models import RefundRequest


@shared_task(
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=settings.JOB_RETRY_BACKOFF_MAX,
    max_retries=15,
)
def refund_payout_run(payout_id: int) -> str:
    """Safe to run twice: the key was stored before the first call, and a settled payout
    is left alone."""
    return services.refund_payout_run(payout_id=payout_id).status


@shared_task
def refund_deadlines_sweep() -> dict:
    return services.refund_deadlines_sweep(now=timezone.now())


@shared_task(**MAIL_RETRY)
def send_refund_email(request_id: int, event: str) -> bool:
    request = (
        RefundRequest.objects.select_related("account", "requested_by", "holder")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        return False
    return emails.send_refund_update(request=request, event=event)


@shared_task
def refund_held_files_purge() -> int:
    """Files held across a refund form's preview that were never sent."""
    from .holding import purge

    return purge()
