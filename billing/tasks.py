from celery import shared_task
from django.conf import settings
from django.utils import timezone

from accounts.models import Account
from accounts.tasks import MAIL_RETRY

from . import emails, services
from .models import CreditNote, Invoice, Licence, Payment


@shared_task(
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=settings.JOB_RETRY_BACKOFF_MAX,
    max_retries=15,
)
def request_payment(payment_id: int) -> str:
    """Ask the gateway for a pending payment. Safe to run twice: the idempotency key
    was stored before the first call, and a settled payment is left alone."""
    return services.payment_request(payment_id=payment_id).status


@shared_task
def subscriptions_renew_due() -> int:
    """Beat's hourly run: it only reads the due ids and queues them in chunks."""
    return services.subscriptions_renew_dispatch(now=timezone.now())


@shared_task
def subscriptions_renew_chunk(ids: list[int]) -> int:
    """Renew one chunk; safe to run twice and beside other chunks. Its clock is the
    moment it runs, like any renewal's."""
    return services.subscriptions_renew_chunk(ids=ids, now=timezone.now())


@shared_task
def usage_bill_due() -> int:
    return services.usage_bill_due(now=timezone.now())


@shared_task(**MAIL_RETRY)
def send_licence_key_email(licence_id: int) -> bool:
    licence = (
        Licence.objects.select_related("account", "product", "line__order__created_by")
        .filter(pk=licence_id)
        .first()
    )
    if licence is None or licence.line.delivered_at is None:
        return False
    emails.send_licence_key(licence=licence)
    return True


@shared_task(**MAIL_RETRY)
def send_receipt_email(invoice_id: int) -> bool:
    invoice = Invoice.objects.select_related("account", "order").filter(pk=invoice_id).first()
    if invoice is None:
        return False
    emails.send_receipt(invoice=invoice)
    return True


@shared_task(**MAIL_RETRY)
def send_credit_note_email(note_id: int) -> bool:
    note = CreditNote.objects.select_related("account", "invoice").filter(pk=note_id).first()
    if note is None:
        return False
    emails.send_credit_note(note=note)
    return True


@shared_task
def payments_retry_due() -> int:
    return services.payments_retry_due(now=timezone.now())


@shared_task(**MAIL_RETRY)
def send_payment_failed_email(payment_id: int) -> bool:
    payment = Payment.objects.select_related("account", "order").filter(pk=payment_id).first()
    if payment is None or payment.order.status != "awaiting_payment":
        return False
    emails.send_payment_failed(payment=payment)
    return True


@shared_task
def reminders_send_due() -> int:
    return services.reminders_send_due(now=timezone.now())


@shared_task(**MAIL_RETRY)
def send_reminder_email(account_id: int, kind: str, data: dict) -> bool:
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return False
    emails.send_reminder(account=account, kind=kind, data=data)
    return True
