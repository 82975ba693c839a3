from celery import shared_task

from accounts.tasks import MAIL_RETRY


@shared_task(**MAIL_RETRY)
def send_mail_answer(mail_id: int) -> bool:
    """The answer written with a mail's outcome, sent once (services.mail_answer)."""
    from .services import answer_send

    return answer_send(mail_id)


@shared_task(**MAIL_RETRY)
def send_mail_confirmation(mail_id: int) -> bool:
    """The link that confirms an unproven mail, to the account user it names. Once."""
    from .services import confirmation_send

    return confirmation_send(mail_id)


@shared_task
def mail_process_stale() -> int:
    """Mails stored but never processed (the process died in between) are processed now."""
    from .services import mail_process_stale as run

    return run()


# At most this many mails per run, so that a run ends well within the task's time limit;
# the rest wait for the next run.
PER_RUN = 1000
IMAP_URLS = {"refunds": "REFUND_MAIL_IMAP_URL", "support": "SUPPORT_MAIL_IMAP_URL"}


@shared_task
def fetch_imap_task(mailbox: str = "refunds") -> dict:
    """The beat job that empties a mailbox's IMAP folder (REFUND_MAIL_IMAP_URL for
    billing, SUPPORT_MAIL_IMAP_URL for support)."""
    from django.conf import settings
    from django.core.cache import cache

    from .fetch import fetch_imap

    url = getattr(settings, IMAP_URLS[mailbox], "")
    if not url:
        return {}
    lock = f"inbox:imap-fetch:{mailbox}"
    # One run at a time: a slow run is not joined by the next beat's.
    if not cache.add(lock, 1, timeout=settings.CELERY_TASK_TIME_LIMIT):
        return {"skipped": "a fetch is already running"}
    try:
        return fetch_imap(url, mailbox=mailbox, limit=PER_RUN)
    finally:
        cache.delete(lock)
