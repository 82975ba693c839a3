from celery import shared_task

from accounts.tasks import MAIL_RETRY


@shared_task(**MAIL_RETRY)
def send_intake_reply(mail_id: int, kind: str) -> bool:
    """Tell the sender what is missing, or to write from the account's address. Once."""
    from django.utils import timezone

    from ..models import InboundMail
    from .replies import send_reply

    mail = InboundMail.objects.filter(pk=mail_id, answered_at__isnull=True).first()
    if mail is None or not mail.sender:
        return False
    send_reply(mail=mail, kind=kind)
    InboundMail.objects.filter(pk=mail.pk).update(answered_at=timezone.now())
    return True
