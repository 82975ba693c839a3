"""Mail the billing app sends, through the accounts app's one sender."""

from datetime import date

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.emails import send_templated
from accounts.selectors import billing_mail_recipients

from .models import BillingDetails
from .money import Money
from .pdf import credit_note_pdf, invoice_pdf
from .selectors import licence_key


def _billing_recipients(account, preferred=None) -> list[str]:
    if preferred is not None and preferred.is_active:
        return [preferred.email]
    return billing_mail_recipients(account=account)


def send_licence_key(*, licence) -> None:
    url = settings.PORTAL_BASE_URL.rstrip("/") + reverse("settings_billing")
    for to in _billing_recipients(licence.account, licence.line.order.created_by):
        send_templated(
            to=to,
            subject=f"Your {licence.product.name} licence key ({licence.line.order.number})",
            template="licence_key",
            context={"licence": licence, "key": licence_key(licence), "url": url},
        )


def _document_recipients(account) -> list[str]:
    """Owners and billing admins, and the addresses in the account's billing details."""
    details = BillingDetails.objects.filter(account=account).first()
    extra = list(details.billing_emails) if details else []
    return list(dict.fromkeys([*_billing_recipients(account), *extra]))


def _send_document(document, *, subject: str, template: str, pdf: bytes, context: dict) -> None:
    url = settings.PORTAL_BASE_URL.rstrip("/") + reverse("settings_billing") + "#invoices"
    with timezone.override(document.account.tzinfo):
        for to in _document_recipients(document.account):
            send_templated(
                to=to,
                subject=subject,
                template=template,
                context={**context, "url": url, "total": Money(document.total, document.currency)},
                html=True,
                attachments=[(f"{document.number}.pdf", pdf, "application/pdf")],
            )


def send_receipt(*, invoice) -> None:
    _send_document(
        invoice,
        subject=f"Receipt for {invoice.order.number}: invoice {invoice.number}",
        template="receipt",
        pdf=invoice_pdf(invoice),
        context={"invoice": invoice},
    )


def send_credit_note(*, note) -> None:
    _send_document(
        note,
        subject=f"Credit note {note.number} for invoice {note.invoice.number}",
        template="credit_note",
        pdf=credit_note_pdf(note),
        context={
            "note": note,
            "to_card": Money(note.refunded_to_card, note.currency),
            "to_balance": Money(note.credited_to_balance, note.currency),
        },
    )


def send_payment_failed(*, payment) -> None:
    """Always sent (not a reminder one can turn off): what happens next, and where to pay."""
    url = settings.PORTAL_BASE_URL.rstrip("/") + reverse("settings_billing") + "#orders"
    with timezone.override(payment.account.tzinfo):
        for to in _document_recipients(payment.account):
            send_templated(
                to=to,
                subject=f"Payment of {payment.order.number} failed",
                template="payment_failed",
                context={
                    "payment": payment,
                    "order": payment.order,
                    "amount": Money(payment.amount, payment.currency),
                    "url": url,
                },
                html=True,
            )


REMINDER_SUBJECTS = {
    "trial_ending": "Your {product} trial ends on {last_day}",
    "renewal_coming": "{product} renews on {renews_on}",
    "support_expiring": "Your {product} ends on {last_day}: renew it to keep support",
    "card_expiring": "Your card on file expires at the end of {month}",
}


def _day(value: str) -> str:
    day = date.fromisoformat(value)
    return f"{day.day} {day:%B %Y}"


def send_reminder(*, account, kind: str, data: dict) -> None:
    """A reminder, to the owners and billing admins who did not turn its kind off."""
    words = {
        key: _day(value) if key in ("last_day", "renews_on") else value
        for key, value in data.items()
    }
    url = settings.PORTAL_BASE_URL.rstrip("/") + reverse("settings_billing")
    for to in billing_mail_recipients(account=account, kind=kind):
        send_templated(
            to=to,
            subject=REMINDER_SUBJECTS[kind].format(**words),
            template=f"reminder_{kind}",
            context={"account": account, "data": words, "url": url},
            html=True,
        )
