"""The save layer of mail intake: store once per Message-ID, then decide what the
mail becomes, through the same services as the Billing page (refunds.services)."""

import hashlib
import logging

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import Membership, User
from accounts.selectors import BILLING_ROLES, acts_on_billing
from billing.models import Order

from .. import services
from ..models import InboundMail, RefundRequest
from .parse import parse
from .types import ParsedMail

logger = logging.getLogger(__name__)


def _message_id(parsed: ParsedMail, raw: bytes) -> str:
    # A mail without a Message-ID is still stored once: its content names it.
    return (parsed.message_id or f"sha256:{hashlib.sha256(raw).hexdigest()}")[:998]


def mail_receive(*, raw: bytes, source: str, now=None) -> tuple[InboundMail, bool]:
    """Store a mail as received (once per Message-ID), then process it. Returns the row
    and whether it was new. Never raises for a bad mail: it lands in triage."""
    now = now or timezone.now()
    parsed = parse(raw)
    message_id = _message_id(parsed, raw)
    existing = InboundMail.objects.filter(message_id=message_id).first()
    if existing is not None:
        return existing, False
    digest = hashlib.sha256(raw).hexdigest()
    try:
        with transaction.atomic():
            mail = InboundMail.objects.create(
                message_id=message_id,
                source=source,
                raw=ContentFile(raw, name=f"{digest}.eml"),
                size=len(raw),
                sender=(parsed.sender_email or "")[:320],
                subject=parsed.subject[:500],
                parsed=parsed.as_dict() | {"body": parsed.body[:20_000]},
                received_at=now,
            )
    except IntegrityError:  # the same mail arrived twice at once
        return InboundMail.objects.get(message_id=message_id), False
    try:
        mail_process(mail=mail, parsed=parsed, now=now)
    except Exception as exc:  # one bad mail never blocks the ones after it
        logger.exception("Inbound mail %s could not be processed", mail.pk)
        _triage(mail, [f"The portal could not process this mail ({type(exc).__name__})."])
    mail.refresh_from_db()
    return mail, True


def _user_for(parsed: ParsedMail) -> User | None:
    if not parsed.sender_email:
        return None
    return User.objects.filter(email__iexact=parsed.sender_email, is_active=True).first()


def _uploads(parsed: ParsedMail):
    """Attachments as evidence: the ones the evidence rules refuse are named, not kept."""
    good, refused = [], []
    for attachment in parsed.attachments:
        upload = SimpleUploadedFile(attachment.name or "attachment", attachment.content)
        try:
            services.evidence_check([upload])
        except PortalError as exc:
            refused.append(exc.message)
            continue
        good.append(upload)
    limit = services.settings.REFUND_EVIDENCE_MAX_FILES
    if len(good) > limit:
        refused.append(f"Only the first {limit} attachments were kept.")
        good = good[:limit]
    return good, refused


def _triage(mail: InboundMail, reasons: list[str], *, tell: str = "missing") -> None:
    from .tasks import send_intake_reply

    InboundMail.objects.filter(pk=mail.pk).update(status=InboundMail.Status.TRIAGE, reasons=reasons)
    mail.status, mail.reasons = InboundMail.Status.TRIAGE, reasons
    if mail.sender and not mail.parsed.get("is_auto"):
        send_intake_reply.delay_on_commit(mail.pk, tell)


def _tell_refused(mail: InboundMail, refused: list[str]) -> None:
    """The sender learns which attachments were not kept, and why."""
    from .tasks import send_intake_reply

    if refused:
        InboundMail.objects.filter(pk=mail.pk).update(reasons=refused)
        send_intake_reply.delay_on_commit(mail.pk, "attachments")


def mail_process(*, mail: InboundMail, parsed: ParsedMail, now) -> InboundMail:
    if parsed.is_auto:
        InboundMail.objects.filter(pk=mail.pk).update(
            status=InboundMail.Status.AUTO, reasons=[parsed.auto_reason or "auto-reply"]
        )
        return mail
    if not parsed.sender_email:
        _triage(mail, ["The mail has no sender address."])
        return mail
    user = _user_for(parsed)
    request = _thread_of(parsed)
    if request is not None:
        return _reply(mail, parsed, request, user, now)
    return _new_request(mail, parsed, user, now)


def _thread_of(parsed: ParsedMail) -> RefundRequest | None:
    if parsed.references:
        earlier = (
            InboundMail.objects.filter(message_id__in=parsed.references, request__isnull=False)
            .select_related("request")
            .first()
        )
        if earlier is not None:
            return earlier.request
    if parsed.request_number:
        return RefundRequest.objects.filter(number=parsed.request_number).first()
    return None


def _reply(mail, parsed, request, user, now) -> InboundMail:
    if user is None or not acts_on_billing(user=user, account=request.account):
        _triage(
            mail, ["The sender is not an owner or billing admin of the account."], tell="sender"
        )
        return mail
    evidence, refused = _uploads(parsed)
    body = parsed.body or "(no text)"
    if refused:
        body += "\n\nNot kept: " + " ".join(refused)
    try:
        services.refund_request_message(
            actor=user, request=request, body=body, evidence=evidence, now=now
        )
    except PortalError as exc:
        _triage(mail, [exc.message])
        return mail
    InboundMail.objects.filter(pk=mail.pk).update(status=InboundMail.Status.REPLY, request=request)
    _tell_refused(mail, refused)
    return mail


def _new_request(mail, parsed, user, now) -> InboundMail:
    # Who may ask comes first, and the answers reveal nothing: a stranger hears the same
    # thing whether or not an order exists, and a customer learns only of their own.
    if (
        user is None
        or not Membership.objects.filter(user=user, is_active=True, role__in=BILLING_ROLES).exists()
    ):
        _triage(
            mail, ["The sender is not an owner or billing admin of any account."], tell="sender"
        )
        return mail
    order = None
    if parsed.order_number:
        order = Order.objects.filter(number=parsed.order_number).select_related("account").first()
        if order is not None and not acts_on_billing(user=user, account=order.account):
            order = None
    missing = []
    if not parsed.order_number:
        missing.append("the order number (for example ORD-2026-000123)")
    elif order is None:
        missing.append(f"an order of your account: we found no {parsed.order_number}")
    if not parsed.reason_code and not parsed.reason_text:
        missing.append("the reason for the refund")
    if missing:
        _triage(mail, [f"Missing {item}." for item in missing])
        return mail
    evidence, refused = _uploads(parsed)
    text = parsed.reason_text or parsed.body
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
    lines = [line.pk for line in order.lines.all() if line.amount > 0]
    try:
        request = services.refund_request_submit(
            actor=user,
            account=order.account,
            line_ids=lines,
            # The customer's words are kept; an unclear reason is read as the plain one.
            reason=parsed.reason_code or "no_longer_needed",
            payout_method=RefundRequest.Payout.ORIGINAL,  # acelle §5: the same method
            text=text[:5000],
            channel=RefundRequest.Channel.EMAIL,
            evidence=evidence,
            now=now,
        )
    except PortalError as exc:
        _triage(mail, [exc.message])
        return mail
    InboundMail.objects.filter(pk=mail.pk).update(
        status=InboundMail.Status.REQUEST, request=request
    )
    _tell_refused(mail, refused)
    return mail


def mail_complete(
    *, actor, mail: InboundMail, order_number: str, requester_email: str, reason: str, now=None
):
    """Staff complete a triaged mail into a request, for the customer who wrote."""
    from accounts.services import require_staff

    require_staff(actor, "refunds.change_refundrequest")
    now = now or timezone.now()
    order = Order.objects.filter(number=order_number.strip().upper()).first()
    if order is None:
        raise PortalError(f"No order {order_number}.", field="order_number")
    user = User.objects.filter(email__iexact=requester_email.strip()).first()
    if user is None or not acts_on_billing(user=user, account=order.account):
        raise PortalError(
            f"{requester_email} is not an owner or billing admin of {order.account.name}.",
            field="requester_email",
        )
    parsed = parse(mail.raw.open("rb").read())
    evidence, _ = _uploads(parsed)
    with transaction.atomic():
        request = services.refund_request_submit(
            actor=user,
            account=order.account,
            line_ids=[line.pk for line in order.lines.all() if line.amount > 0],
            reason=reason,
            payout_method=RefundRequest.Payout.ORIGINAL,
            text=(parsed.reason_text or parsed.body)[:5000],
            channel=RefundRequest.Channel.EMAIL,
            evidence=evidence,
            now=now,
        )
        InboundMail.objects.filter(pk=mail.pk).update(
            status=InboundMail.Status.DONE, request=request, resolved_by=actor, resolved_at=now
        )
        from accounts.services import audit_record

        audit_record(
            actor=actor,
            action="refund.mail_completed",
            target=request,
            account=order.account,
            changes={"mail": mail.pk},
        )
    return request
