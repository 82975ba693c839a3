"""The beat job that empties the billing IMAP mailbox (REFUND_MAIL_IMAP_URL)."""

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

# At most this many mails per run, so that a run ends well within the task's time limit;
# the rest wait for the next run.
PER_RUN = 1000
LOCK = "refunds:mail:imap-fetch"


@shared_task
def fetch_imap_task() -> dict:
    from .fetch import fetch_imap

    url = settings.REFUND_MAIL_IMAP_URL
    if not url:
        return {}
    # One run at a time: a slow run is not joined by the next beat's.
    if not cache.add(LOCK, 1, timeout=settings.CELERY_TASK_TIME_LIMIT):
        return {"skipped": "a fetch is already running"}
    try:
        return fetch_imap(url, limit=PER_RUN)
    finally:
        cache.delete(LOCK)
