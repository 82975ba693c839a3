"""Answers to mails that did not become a request. They reveal nothing about any account."""

from django.conf import settings

from accounts.emails import send_templated


def send_reply(*, mail, kind: str) -> None:
    subject = f"Re: {mail.subject}" if mail.subject else "Your refund request"
    send_templated(
        to=mail.sender,
        subject=subject[:200],
        template="refund_intake_reply",
        context={
            "kind": kind,
            "reasons": mail.reasons,
            "billing_email": settings.VENDOR_BILLING_EMAIL,
        },
    )
