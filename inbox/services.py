"""Store a mail once, hand it to its mailbox's handler, and answer only what is committed.

mail_receive is what every fetcher calls (fetch.py, webhook.py). The row is committed
before the handler runs, so a crash never loses the mail: a row left `received` is
processed again by `mail_process_stale` (beat). The handler runs in one transaction
with its outcome; answers and confirmation links are queued on its commit and sent at
most once (answered_at / confirm_sent_at are set before sending).
"""

import datetime as dt
import hashlib
import logging
import secrets
from contextlib import contextmanager, nullcontext

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.emails import send_templated
from accounts.errors import PortalError
from accounts.services import audit_record, require_staff
from core import outbox

from . import proof
from .handlers import handler_for
from .models import InboundMail
from .parse import MailMessage, read

logger = logging.getLogger(__name__)

STALE_AFTER = dt.timedelta(minutes=10)
CONFIRM_SALT = "inbox.mail-confirm"
CONFIRM_MAX_AGE = 14 * 24 * 3600


def message_id_of(message: MailMessage, raw: bytes, digest: str | None = None) -> str:
    # A mail without a Message-ID is still stored once: its content names it.
    if message.message_id:
        return message.message_id[:998]
    return f"sha256:{digest or hashlib.sha256(raw).hexdigest()}"


def mail_receive(
    *, raw: bytes, source: str, mailbox: str, verdict: str = "", now=None
) -> tuple[InboundMail, bool]:
    """Store a mail as received (once per Message-ID), then process it. Returns the row
    as its outcome left it (what jobs do after the commit is not in it) and whether it
    was new. Never raises for a bad mail: it lands in triage. `verdict` is the
    provider's own sender verdict (proof.provider_verdict), when it gave one."""
    now = now or timezone.now()
    handler_for(mailbox)  # an unknown mailbox is a programming error: before storing
    message = read(raw)  # the one parse: the handler gets it too
    digest = hashlib.sha256(raw).hexdigest()
    message_id = message_id_of(message, raw, digest)
    row = InboundMail(
        mailbox=mailbox,
        message_id=message_id,
        source=source,
        # A name of its own, so that a duplicate's file can go without touching another's.
        raw=ContentFile(raw, name=f"{digest[:32]}-{secrets.token_hex(6)}.eml"),
        size=len(raw),
        sender=(message.sender_email or "")[:320],
        subject=message.subject[:500],
        proof=proof.server_verdict(message) or verdict,
        received_at=now,
    )
    try:
        # One statement, committed on its own (autocommit); a savepoint only inside a
        # caller's transaction, so that a duplicate does not break it. The unique
        # Message-ID finds a duplicate: no look-up before, for the many new mails.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            row.save(force_insert=True)
    except IntegrityError:  # stored already (or arriving twice at once)
        row.raw.delete(save=False)
        return InboundMail.objects.get(message_id=message_id), False
    return mail_process(row, message=message, now=now), True


def mail_process(mail: InboundMail, *, message: MailMessage | None = None, now=None) -> InboundMail:
    """Hand a stored mail to its handler, in one transaction with its outcome. Returns
    the row as the outcome left it."""
    now = now or timezone.now()
    if message is None:
        with mail.raw.open("rb") as file:
            message = read(file.read())
    try:
        with transaction.atomic():
            locked = InboundMail.objects.select_for_update().get(pk=mail.pk)
            if locked.status != InboundMail.Status.RECEIVED:
                return locked  # processed meanwhile
            with _settled_once(locked):
                handler_for(locked.mailbox).handle(locked, message, now)
            return locked
    except Exception as exc:  # one bad mail never blocks the ones after it
        logger.exception("Inbound mail %s could not be processed", mail.pk)
        with transaction.atomic():
            mail_settle(
                mail,
                InboundMail.Status.TRIAGE,
                reasons=[f"The portal could not process this mail ({type(exc).__name__})."],
            )
        return mail


@contextmanager
def _settled_once(mail: InboundMail):
    """What the handler settles (mail_settle, mail_answer...) is written in one UPDATE
    when it returns, rather than one per call: the same transaction, fewer queries."""
    mail._settling = {}
    try:
        yield
        fields = mail._settling
    finally:
        del mail._settling
    if fields:
        InboundMail.objects.filter(pk=mail.pk).update(**fields)


def mail_process_stale(now=None) -> int:
    now = now or timezone.now()
    stale = InboundMail.objects.filter(
        status=InboundMail.Status.RECEIVED, received_at__lt=now - STALE_AFTER
    ).order_by("received_at")[:500]
    count = 0
    for mail in stale:
        mail_process(mail, now=now)
        count += 1
    mail_confirm_expire(now)
    return count


def mail_confirm_expire(now=None) -> int:
    """Mails awaiting confirmation whose link has expired are set aside, unconfirmed."""
    now = now or timezone.now()
    return InboundMail.objects.filter(
        status=InboundMail.Status.CONFIRM,
        received_at__lt=now - dt.timedelta(seconds=CONFIRM_MAX_AGE),
    ).update(
        status=InboundMail.Status.DISMISSED,
        reasons=["Not confirmed before the link expired."],
        resolved_at=now,
    )


def mail_settle(mail: InboundMail, status: str, **fields) -> None:
    """Record what a mail became (status, reasons, thread, account, parsed)."""
    fields["status"] = status
    for name, value in fields.items():
        setattr(mail, name, value)
    pending = getattr(mail, "_settling", None)
    if pending is not None:  # inside mail_process: written once the handler returns
        pending.update(fields)
        return
    InboundMail.objects.filter(pk=mail.pk).update(**fields)


def mail_answer(mail: InboundMail, *, body: str, subject: str = "") -> None:
    """Write the answer to the sender with the outcome; it is sent once committed."""
    from .tasks import send_mail_answer

    if not mail.sender or mail.status == InboundMail.Status.AUTO:
        return
    subject = subject or (f"Re: {mail.subject}" if mail.subject else "Your mail")
    mail_settle(mail, mail.status, answer_subject=" ".join(subject.split())[:200], answer=body)
    outbox.enqueue(send_mail_answer, mail.pk)


def _claim(mail_id: int, field: str) -> InboundMail | None:
    """Mark a mail's answer (or link) as sent before sending it: never twice."""
    now = timezone.now()
    if not InboundMail.objects.filter(pk=mail_id, **{f"{field}__isnull": True}).update(
        **{field: now}
    ):
        return None
    return InboundMail.objects.get(pk=mail_id)


def _release(mail_id: int, field: str) -> None:
    InboundMail.objects.filter(pk=mail_id).update(**{field: None})


def answer_send(mail_id: int) -> bool:
    mail = _claim(mail_id, "answered_at")
    if mail is None or not mail.answer:
        return False
    own = settings.SUPPORT_EMAIL if mail.mailbox == "support" else settings.VENDOR_BILLING_EMAIL
    headers = {"Auto-Submitted": "auto-replied"}  # RFC 3834: no auto-reply loops
    if not mail.message_id.startswith("sha256:"):
        headers["In-Reply-To"] = headers["References"] = f"<{mail.message_id}>"
    reply_to = proof.reply_address(own, mail.thread) if mail.thread else own
    try:
        EmailMessage(
            subject=mail.answer_subject,
            body=mail.answer,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[mail.sender],
            reply_to=[reply_to],
            headers=headers,
        ).send()
    except Exception:
        _release(mail_id, "answered_at")  # tried again by the task's retry
        raise
    return True


# --- confirmation of an unproven mail ---------------------------------------------------


def mail_await_confirmation(mail: InboundMail, *, user, account, reasons=()) -> None:
    """An unproven mail that would act for `user` on `account`: kept, and a link to
    confirm it is mailed to the user's own address. Nothing happens until it is followed."""
    from .tasks import send_mail_confirmation

    mail_settle(
        mail,
        InboundMail.Status.CONFIRM,
        confirm_user=user,
        account=account,
        reasons=list(reasons)
        or ["The sender is not proven: waiting for the account to confirm the mail."],
    )
    outbox.enqueue(send_mail_confirmation, mail.pk)


def confirm_token(mail: InboundMail) -> str:
    return signing.dumps({"mail": mail.pk}, salt=CONFIRM_SALT)


def confirm_url(mail: InboundMail) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse(
        "inbox:confirm", args=[confirm_token(mail)]
    )


def mail_for_token(token: str) -> InboundMail | None:
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.BadSignature:
        return None
    return InboundMail.objects.filter(pk=data.get("mail")).first()


def confirmation_send(mail_id: int) -> bool:
    mail = _claim(mail_id, "confirm_sent_at")
    if mail is None or mail.confirm_user is None or mail.status != InboundMail.Status.CONFIRM:
        return False
    handler = handler_for(mail.mailbox)
    try:
        send_templated(
            to=mail.confirm_user.email,
            subject=f"Confirm the mail you sent to {settings.PORTAL_NAME}",
            template="mail_confirm",
            context={
                "mail": mail,
                "what": handler.describe(mail) if handler.describe else "",
                "url": confirm_url(mail),
                "days": CONFIRM_MAX_AGE // 86400,
            },
        )
    except Exception:
        _release(mail_id, "confirm_sent_at")
        raise
    return True


def mail_confirm(*, mail: InboundMail, user, now=None) -> str:
    """A signed-in user follows the link: the handler acts as that user. Returns the URL
    of what the mail became."""
    now = now or timezone.now()
    handler = handler_for(mail.mailbox)
    with transaction.atomic():
        locked = InboundMail.objects.select_for_update().get(pk=mail.pk)
        if locked.status != InboundMail.Status.CONFIRM:
            raise PortalError("This mail was already confirmed or closed.", code="closed")
        url = handler.confirm(locked, user, now)
        mail_settle(
            locked,
            locked.status,
            reasons=[f"Confirmed by {user.email} through the link sent to them."],
            resolved_by=user,
            resolved_at=now,
        )
        audit_record(
            actor=user,
            action="mail.confirmed",
            target=locked,
            account=locked.account,
            changes={"mail": locked.pk, "mailbox": locked.mailbox},
        )
    return url


# --- staff: held replies, dismissals -------------------------------------------------


def mail_accept(*, actor, mail: InboundMail, now=None) -> None:
    """Staff accept a held reply: it is posted as its sender."""
    require_staff(actor, "inbox.change_inboundmail")
    now = now or timezone.now()
    handler = handler_for(mail.mailbox)
    with transaction.atomic():
        locked = InboundMail.objects.select_for_update().get(pk=mail.pk)
        if locked.status != InboundMail.Status.HELD or handler.accept is None:
            raise PortalError("Only a held reply can be accepted.", code="not_held")
        handler.accept(locked, actor, now)
        mail_settle(locked, InboundMail.Status.REPLY, resolved_by=actor, resolved_at=now)
        audit_record(
            actor=actor,
            action="mail.accepted",
            target=locked,
            account=locked.account,
            changes={"mail": locked.pk, "thread": locked.thread},
        )


CLOSABLE = ("triage", "held", "confirm")


def mail_dismiss(*, actor, mail: InboundMail, now=None) -> bool:
    """Staff discard a mail in triage, held or awaiting confirmation."""
    require_staff(actor, "inbox.change_inboundmail")
    now = now or timezone.now()
    with transaction.atomic():
        changed = InboundMail.objects.filter(pk=mail.pk, status__in=CLOSABLE).update(
            status=InboundMail.Status.DISMISSED, resolved_by=actor, resolved_at=now
        )
        if changed:
            audit_record(
                actor=actor,
                action="mail.dismissed",
                target=mail,
                account=mail.account,
                changes={"mail": mail.pk, "was": mail.status},
            )
    return bool(changed)


def thread_of_references(mailbox: str, references) -> str | None:
    """The thread of the first earlier mail of this mailbox that a reply quotes."""
    refs = [ref[:998] for ref in references if ref]
    if not refs:
        return None
    return (
        InboundMail.objects.filter(mailbox=mailbox, message_id__in=refs)
        .exclude(thread="")
        .values_list("thread", flat=True)
        .first()
    )
