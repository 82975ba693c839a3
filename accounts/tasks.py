"""Thin jobs: look a row up, call a service or send its mail. Safe to run twice."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import emails, services
from .models import Invitation

# Tries spread over up to 36 minutes, no wait longer than JOB_RETRY_BACKOFF_MAX (which
# the broker's visibility timeout outlasts: settings).
MAIL_RETRY = {
    "autoretry_for": (Exception,),
    "retry_backoff": True,
    "retry_backoff_max": settings.JOB_RETRY_BACKOFF_MAX,
    "max_retries": 24,
}


@shared_task(**MAIL_RETRY)
def send_invitation_email(invitation_id: int, nonce: str) -> bool:
    invitation = (
        Invitation.objects.select_related("account", "invited_by").filter(pk=invitation_id).first()
    )
    if invitation is None or not invitation.is_usable(timezone.now()):
        return False
    if invitation.nonce != nonce or invitation.sent_at:
        return False  # a newer link replaced this one, or this one already went out
    emails.send_invitation(invitation=invitation, token=services.invitation_token(invitation))
    Invitation.objects.filter(pk=invitation.pk, nonce=nonce).update(sent_at=timezone.now())
    return True


@shared_task(**MAIL_RETRY)
def send_invitation_expired_email(invitation_id: int) -> bool:
    invitation = (
        Invitation.objects.select_related("account", "invited_by").filter(pk=invitation_id).first()
    )
    if invitation is None or invitation.status != Invitation.Status.EXPIRED:
        return False
    if invitation.expiry_notice_sent_at or not invitation.invited_by:
        return False  # already told (the job may run twice)
    emails.send_invitation_expired(invitation=invitation)
    Invitation.objects.filter(pk=invitation.pk).update(expiry_notice_sent_at=timezone.now())
    return True


@shared_task
def invitations_expire() -> int:
    return services.invitations_expire(now=timezone.now())
