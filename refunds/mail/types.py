"""What the parser reads from a mail: plain data, shared by the three layers."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from inbox.parse import Attachment

__all__ = ["Attachment", "ParsedMail"]


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None = None  # without angle brackets
    references: tuple[str, ...] = ()  # In-Reply-To then References, without brackets
    sender_email: str | None = None  # lower-cased address of From (or Reply-To)
    sender_name: str = ""
    subject: str = ""  # decoded, one line, at most 500 characters
    is_auto: bool = False  # auto-reply, bounce, mailer-daemon: recorded, never answered
    auto_reason: str = ""
    is_refund_subject: bool = False  # "Refund request — Order #..." in any of its variants
    request_number: str | None = None  # RR-2026-000123 (subject first, then body)
    order_number: str | None = None  # ORD-2026-000123 as written, normalised upper-case
    names: tuple[str, ...] = ()  # names the customer gives ("Name: Jane Doe")
    emails: tuple[str, ...] = ()  # addresses mentioned in the new text
    payment_date: date | None = None
    amount: Decimal | None = None
    currency: str | None = None  # ISO code when it is clear ("$" -> USD, "€" -> EUR)
    method: str | None = None  # "Visa", "Mastercard", "Amex", "PayPal", "bank transfer", "card"
    reason_code: str | None = None  # one of refunds.policy.REASONS when it is clear
    reason_text: str = ""  # the customer's own words about why
    body: str = ""  # the new text, without quoted history and signature
    attachments: tuple[Attachment, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)  # why something is missing or odd

    def as_dict(self) -> dict:
        return {
            "message_id": self.message_id,
            "references": list(self.references),
            "sender_email": self.sender_email,
            "sender_name": self.sender_name,
            "subject": self.subject,
            "is_auto": self.is_auto,
            "auto_reason": self.auto_reason,
            "is_refund_subject": self.is_refund_subject,
            "request_number": self.request_number,
            "order_number": self.order_number,
            "names": list(self.names),
            "emails": list(self.emails),
            "payment_date": self.payment_date.isoformat() if self.payment_date else None,
            "amount": str(self.amount) if self.amount is not None else None,
            "currency": self.currency,
            "method": self.method,
            "reason_code": self.reason_code,
            "reason_text": self.reason_text,
            "body": self.body,
            "attachments": [
                {"name": a.name, "content_type": a.content_type, "size": a.size}
                for a in self.attachments
            ],
            "problems": list(self.problems),
        }
