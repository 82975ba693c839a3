"""The refunds mailbox's handler (inbox.handlers, registered in refunds.apps): what a
mail to billing becomes, through the same services as the Billing page
(refunds.services). inbox stores the mail once and calls `handle` in the transaction
that records the outcome; answers are sent once that is committed.

- An auto-reply or bounce: recorded, never answered.
- A reply on a request's thread (the request's reply address, then In-Reply-To /
  References, then the RR- number): posted as the sender's message when the sender is
  proven (inbox.proof), else held for staff to accept or discard.
- A new request from an owner or billing admin naming one of their orders and a
  reason: filed when the sender is proven; else kept awaiting the account's
  confirmation (a link mailed to the user's own address). Nothing unproven moves money.
- Anything else: triage, with an answer that says what is missing and reveals nothing
  about any account.
"""

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import User
from accounts.selectors import acts_on_billing, billing_account_ids
from accounts.uploads import mail_uploads
from billing.models import Order, OrderLine
from inbox import proof
from inbox.handlers import Handler
from inbox.models import InboundMail
from inbox.parse import MailMessage
from inbox.parse import read as read_mail
from inbox.services import (
    mail_answer,
    mail_await_confirmation,
    mail_settle,
    thread_of_references,
)

from .. import services
from ..models import RefundRequest
from .parse import named_items, parse_message
from .types import ParsedMail

logger = logging.getLogger(__name__)

_S = InboundMail.Status
NOT_PROVEN = "The sender's address is not proven (no trusted DMARC or DKIM pass, no reply token)."


def _parsed(mail: InboundMail) -> tuple[MailMessage, ParsedMail]:
    with mail.raw.open("rb") as file:
        message = read_mail(file.read())
    return message, parse_message(message)


def handle(mail: InboundMail, message: MailMessage, now) -> None:
    parsed = _parse(message)
    mail_settle(mail, _S.RECEIVED, parsed=parsed.as_dict() | {"body": parsed.body[:20_000]})
    if parsed.is_auto:
        mail_settle(mail, _S.AUTO, reasons=[parsed.auto_reason or "auto-reply"])
        return
    if not parsed.sender_email:
        _triage(mail, ["The mail has no sender address."])
        return
    user = _user_for(parsed)
    request = _thread_of(message, parsed)
    if request is not None:
        _reply(mail, message, parsed, request, user, now)
    else:
        _new_request(mail, parsed, user, now)


@dataclass(frozen=True)
class _Batch:
    """What a batch of mails needs, read once for all of them (see `batch`)."""

    parsed: dict  # id() of each mail as read -> its refund fields
    addresses: frozenset[str]  # the senders' addresses (lower-cased) looked up
    users: dict  # address -> the active user of it, for those who have one
    billing: dict  # user id -> ids of the accounts whose billing they act on
    numbers: frozenset[str]  # the order numbers looked up
    orders: dict  # number -> the order, with its account and its lines


_BATCH: ContextVar[_Batch | None] = ContextVar("refund_mail_batch", default=None)
LINES = Prefetch("lines", queryset=OrderLine.objects.select_related("product"))


@contextmanager
def batch(messages: list[MailMessage]):
    """A batch of mails (inbox.handlers.Handler.batch): their senders' active users, the
    accounts whose billing each acts on and the orders the mails name, read in four
    queries for all of them rather than in up to four per mail."""
    parsed = {id(message): parse_message(message) for message in messages}
    addresses = frozenset(p.sender_email.lower() for p in parsed.values() if p.sender_email)
    users = {
        user.email.lower(): user
        for user in User.objects.with_emails(addresses).filter(is_active=True)
    }
    billing = billing_account_ids(users=list(users.values()))
    numbers = frozenset(p.order_number for p in parsed.values() if p.order_number)
    orders = {
        order.number: order
        for order in Order.objects.filter(number__in=numbers)
        .select_related("account")
        .prefetch_related(LINES)
    }
    token = _BATCH.set(
        _Batch(
            parsed=parsed,
            addresses=addresses,
            users=users,
            billing=billing,
            numbers=numbers,
            orders=orders,
        )
    )
    try:
        yield
    finally:
        _BATCH.reset(token)


def _parse(message: MailMessage) -> ParsedMail:
    known = _BATCH.get()
    if known is not None and id(message) in known.parsed:
        return known.parsed[id(message)]
    return parse_message(message)


def _user_for(parsed: ParsedMail) -> User | None:
    if not parsed.sender_email:
        return None
    known = _BATCH.get()
    if known is not None and parsed.sender_email.lower() in known.addresses:
        return known.users.get(parsed.sender_email.lower())
    return User.objects.with_email(parsed.sender_email).filter(is_active=True).first()


def _billing_accounts(user: User) -> set[int]:
    """The ids of the accounts whose billing `user` acts on."""
    known = _BATCH.get()
    if known is not None and user.pk in known.billing:
        return known.billing[user.pk]
    return billing_account_ids(users=[user])[user.pk]


def _thread_of(message: MailMessage, parsed: ParsedMail) -> RefundRequest | None:
    for number in (
        proof.tagged_thread(message),
        thread_of_references(InboundMail.Mailbox.REFUNDS, parsed.references),
        parsed.request_number,
    ):
        if number and number.startswith("RR-"):
            found = RefundRequest.objects.filter(number=number).select_related("account").first()
            if found is not None:
                return found
    return None


def _uploads(parsed: ParsedMail):
    """Attachments as evidence: the ones the evidence rules refuse are named, not kept."""
    return mail_uploads(parsed.attachments)


def _answer(mail: InboundMail, kind: str, reasons=()) -> None:
    mail_answer(
        mail,
        subject=f"Re: {mail.subject}" if mail.subject else "Your refund request",
        body=render_to_string(
            "emails/refund_intake_reply.txt",
            {
                "kind": kind,
                "reasons": list(reasons),
                "billing_email": settings.VENDOR_BILLING_EMAIL,
                "PORTAL_NAME": settings.PORTAL_NAME,
            },
        ),
    )


def _triage(mail: InboundMail, reasons: list[str], *, tell: str = "missing") -> None:
    mail_settle(mail, _S.TRIAGE, reasons=reasons)
    _answer(mail, tell, reasons)


def _reply(mail, message, parsed, request, user, now) -> None:
    if user is None or not acts_on_billing(user=user, account=request.account):
        _triage(
            mail, ["The sender is not an owner or billing admin of the account."], tell="sender"
        )
        return
    proven = mail.proof or (proof.TOKEN if proof.token_proves(message, request.number) else "")
    if not proven:
        mail_settle(
            mail, _S.HELD, thread=request.number, account=request.account, reasons=[NOT_PROVEN]
        )
        _answer(mail, "held")
        return
    try:
        _post(mail, parsed, request, user, now)
    except PortalError as exc:
        _triage(mail, [exc.message])
        return
    mail_settle(mail, _S.REPLY, thread=request.number, account=request.account, proof=proven)


def _post(mail, parsed, request, user, now) -> list[str]:
    evidence, refused = _uploads(parsed)
    body = parsed.body or "(no text)"
    if refused:
        body += "\n\nNot kept: " + " ".join(refused)
    services.refund_request_message(
        actor=user, request=request, body=body, evidence=evidence, now=now
    )
    if refused:
        mail_settle(mail, mail.status, reasons=refused)
        _answer(mail, "attachments", refused)
    return refused


def _order_of(parsed: ParsedMail, user, billing_accounts=None) -> Order | None:
    """The order the mail names, when `user` acts on its account's billing
    (`billing_accounts`: the ids of the accounts they do, when already known)."""
    if not parsed.order_number:
        return None
    known = _BATCH.get()
    if known is not None and parsed.order_number in known.numbers:
        order = known.orders.get(parsed.order_number)
    else:
        order = Order.objects.filter(number=parsed.order_number).select_related("account").first()
    if order is None:
        return None
    if billing_accounts is not None:
        return order if order.account_id in billing_accounts else None
    return order if acts_on_billing(user=user, account=order.account) else None


def _new_request(mail, parsed, user, now) -> None:
    # Who may ask comes first, and the answers reveal nothing: a stranger hears the same
    # thing whether or not an order exists, and a customer learns only of their own.
    billing_accounts = _billing_accounts(user) if user is not None else set()
    if not billing_accounts:
        _triage(
            mail, ["The sender is not an owner or billing admin of any account."], tell="sender"
        )
        return
    order = _order_of(parsed, user, billing_accounts)
    missing = []
    if not parsed.order_number:
        missing.append("the order number (for example ORD-2026-000123)")
    elif order is None:
        missing.append(f"an order of your account: we found no {parsed.order_number}")
    if not parsed.reason_code and not parsed.reason_text:
        missing.append("the reason for the refund")
    if missing:
        _triage(mail, [f"Missing {item}." for item in missing])
        return
    if not mail.proof:
        # acelle §5 asks for the request by mail; a From header alone proves nothing.
        mail_await_confirmation(mail, user=user, account=order.account, reasons=[NOT_PROVEN])
        return
    try:
        _submit(mail, parsed, user, order, now)
    except PortalError as exc:
        _triage(mail, [exc.message])


def _lines(parsed: ParsedMail, order: Order) -> list[int]:
    """The purchases the mail names on a multi-item order, else all of them."""
    prefetch_related_objects([order], LINES)  # read with the batch's orders, or now
    purchases = [line for line in order.lines.all() if line.amount > 0]
    named = named_items(
        parsed.body,
        {line.pk: [line.description, line.product.name] for line in purchases},
    )
    return named or [line.pk for line in purchases]


def _submit_arguments(
    parsed: ParsedMail, user, order: Order, *, reason: str = ""
) -> tuple[dict, list[str]]:
    """refund_request_submit's arguments for a mail, whoever files it (the mail itself,
    its confirmation, staff completing it), and the names of the attachments refused."""
    evidence, refused = _uploads(parsed)
    # The customer's whole message (without quoted history and signature) is kept.
    text = parsed.body or parsed.reason_text
    facts = [
        f"paid on {parsed.payment_date.day} {parsed.payment_date:%B %Y}"
        if parsed.payment_date
        else "",
        f"{parsed.amount} {parsed.currency or ''}".strip() if parsed.amount is not None else "",
        f"by {parsed.method}" if parsed.method else "",
    ]
    if any(facts):
        text += "\n\nThe mail says: " + ", ".join(f for f in facts if f) + "."
    if refused:
        text += "\n\nAttachments not kept: " + " ".join(refused)
    arguments = {
        "actor": user,
        "account": order.account,
        "line_ids": _lines(parsed, order),
        # The customer's words are kept; an unclear reason is read as the plain one.
        "reason": reason or parsed.reason_code or "no_longer_needed",
        "payout_method": RefundRequest.Payout.ORIGINAL,  # acelle §5: the same method
        "text": text[:5000],
        "channel": RefundRequest.Channel.EMAIL,
        "evidence": evidence,
    }
    return arguments, refused


def _submit(mail, parsed, user, order, now, *, status=_S.REQUEST) -> RefundRequest:
    arguments, refused = _submit_arguments(parsed, user, order)
    request = services.refund_request_submit(**arguments, now=now)
    mail_settle(mail, status, thread=request.number, account=order.account)
    if refused:
        mail_settle(mail, status, reasons=refused)
        _answer(mail, "attachments", refused)
    return request


# --- confirmation, held replies, staff completion -----------------------------------


def confirm(mail: InboundMail, user, now) -> str:
    """The account's user follows the link: the request is filed as theirs."""
    _, parsed = _parsed(mail)
    order = _order_of(parsed, user)
    if order is None:
        raise PortalError("You cannot ask for a refund of this order.", code="not_allowed")
    request = _submit(mail, parsed, user, order, now)
    return reverse("refund_request_detail", args=[request.number])


def accept(mail: InboundMail, staff, now) -> None:
    """Staff accept a held reply: it is posted as the owner or billing admin who wrote."""
    _, parsed = _parsed(mail)
    request = RefundRequest.objects.filter(number=mail.thread).first()
    user = _user_for(parsed)
    if request is None or user is None or not acts_on_billing(user=user, account=request.account):
        raise PortalError(
            "The sender is not an owner or billing admin of the request's account.",
            code="not_allowed",
        )
    _post(mail, parsed, request, user, now)


def describe(mail: InboundMail) -> str:
    number = (mail.parsed or {}).get("order_number")
    return f"file a refund request for {number}" if number else "file a refund request"


def mail_complete(
    *, actor, mail: InboundMail, order_number: str, requester_email: str, reason: str, now=None
):
    """Staff complete a triaged mail into a request, for the customer who wrote."""
    from accounts.services import audit_record, require_staff

    require_staff(actor, "refunds.change_refundrequest")
    now = now or timezone.now()
    order = Order.objects.filter(number=order_number.strip().upper()).first()
    if order is None:
        raise PortalError(f"No order {order_number}.", field="order_number")
    user = User.objects.with_email(requester_email.strip()).first()
    if user is None or not acts_on_billing(user=user, account=order.account):
        raise PortalError(
            f"{requester_email} is not an owner or billing admin of {order.account.name}.",
            field="requester_email",
        )
    _, parsed = _parsed(mail)
    arguments, _refused = _submit_arguments(parsed, user, order, reason=reason)
    with transaction.atomic():
        request = services.refund_request_submit(**arguments, now=now)
        mail_settle(
            mail,
            _S.DONE,
            thread=request.number,
            account=order.account,
            resolved_by=actor,
            resolved_at=now,
        )
        audit_record(
            actor=actor,
            action="refund.mail_completed",
            target=request,
            account=order.account,
            changes={"mail": mail.pk},
        )
    return request


def handler() -> Handler:
    from ..admin_mail import complete_view

    return Handler(
        mailbox=InboundMail.Mailbox.REFUNDS,
        handle=handle,
        confirm=confirm,
        accept=accept,
        describe=describe,
        complete_view=complete_view,
        batch=batch,
    )


def mail_receive(*, raw: bytes, source: str, now=None):
    """A mail to billing (the refunds mailbox): inbox.services.mail_receive."""
    from inbox.services import mail_receive as receive

    return receive(raw=raw, source=source, mailbox=InboundMail.Mailbox.REFUNDS, now=now)
