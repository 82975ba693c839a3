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
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field as dataclass_field

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
from core.bulk import together_or_none, update_rows

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


def _row(raw: bytes, *, source: str, mailbox: str, verdict: str, now) -> tuple:
    """The row a mail is stored as, not saved yet, and the mail as read (the one parse:
    the handler gets it too)."""
    message = read(raw)
    digest = hashlib.sha256(raw).hexdigest()
    row = InboundMail(
        mailbox=mailbox,
        message_id=message_id_of(message, raw, digest),
        source=source,
        # A name of its own, so that a duplicate's file can go without touching another's.
        raw=ContentFile(raw, name=f"{digest[:32]}-{secrets.token_hex(6)}.eml"),
        size=len(raw),
        sender=(message.sender_email or "")[:320],
        subject=message.subject[:500],
        proof=proof.server_verdict(message) or verdict,
        received_at=now,
    )
    return row, message


def _store(row: InboundMail) -> tuple[InboundMail, bool]:
    """Save the row, or find the one stored before under its Message-ID: (row, new)."""
    try:
        # One statement, committed on its own (autocommit); a savepoint only inside a
        # caller's transaction, so that a duplicate does not break it. The unique
        # Message-ID finds a duplicate: no look-up before, for the many new mails.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            row.save(force_insert=True)
    except IntegrityError:  # stored already (or arriving twice at once)
        row.raw.delete(save=False)
        return InboundMail.objects.get(message_id=row.message_id), False
    return row, True


def mail_receive(
    *, raw: bytes, source: str, mailbox: str, verdict: str = "", now=None
) -> tuple[InboundMail, bool]:
    """Store a mail as received (once per Message-ID), then process it. Returns the row
    as its outcome left it (what jobs do after the commit is not in it) and whether it
    was new. Never raises for a bad mail: it lands in triage. `verdict` is the
    provider's own sender verdict (proof.provider_verdict), when it gave one."""
    now = now or timezone.now()
    handler_for(mailbox)  # an unknown mailbox is a programming error: before storing
    row, message = _row(raw, source=source, mailbox=mailbox, verdict=verdict, now=now)
    row, created = _store(row)
    if not created:
        return row, False
    return mail_process(row, message=message, now=now), True


# A fetch hands its mails over in batches of at most this many, and of this many bytes
# unless one mail is bigger (it goes alone): mail_receive_many.
BATCH = 50
BATCH_BYTES = 8 * 1024 * 1024


def mail_receive_many(
    raws: list[bytes], *, source: str, mailbox: str, now=None
) -> list[tuple[InboundMail, bool]]:
    """mail_receive for a batch of mails that a fetch read: the new ones stored in one
    INSERT, committed before anything else happens to them, then processed together
    (mail_process_many). Returns (row, new) for each mail, in order; a mail seen before,
    or twice in the batch, is (the row stored first, False)."""
    now = now or timezone.now()
    handler_for(mailbox)
    built = [_row(raw, source=source, mailbox=mailbox, verdict="", now=now) for raw in raws]
    stored = _store_many([row for row, _ in built])
    new_rows, new_messages = [], []
    for (row, message), (_, new) in zip(built, stored, strict=True):
        if new:
            new_rows.append(row)
            new_messages.append(message)
    processed = {row.pk: row for row in mail_process_many(new_rows, messages=new_messages, now=now)}
    # A mail twice in the batch is, the second time, the row the first one became.
    return [(processed.get(row.pk, row), new) for row, new in stored]


def _store_many(rows: list[InboundMail]) -> list[tuple[InboundMail, bool]]:
    """_store for a batch: the Message-IDs known already found in one query, the others
    saved in one INSERT (each once, if the batch holds it twice)."""
    known = InboundMail.objects.in_bulk([row.message_id for row in rows], field_name="message_id")
    first: dict[str, InboundMail] = {}
    for row in rows:
        if row.message_id not in known:
            first.setdefault(row.message_id, row)
    try:
        if first:
            with transaction.atomic():
                InboundMail.objects.bulk_create(first.values())
    except IntegrityError:
        # One arrived meanwhile through another fetch: each is stored on its own. The
        # files were written by the INSERT that failed, and are kept or deleted there.
        stored = {message_id: _store(row) for message_id, row in first.items()}
    else:
        stored = {message_id: (row, True) for message_id, row in first.items()}
    out = []
    for row in rows:
        if row.message_id in known:
            out.append((known[row.message_id], False))
        elif first[row.message_id] is row:
            out.append(stored[row.message_id])
        else:  # twice in the batch: the first one stands
            out.append((stored[row.message_id][0], False))
    return out


def mail_process(mail: InboundMail, *, message: MailMessage | None = None, now=None) -> InboundMail:
    """Hand a stored mail to its handler, in one transaction with its outcome. Returns
    the row as the outcome left it."""
    now = now or timezone.now()
    if message is None:
        message = _read_stored(mail)
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


def mail_process_many(
    mails: list[InboundMail], *, messages: list[MailMessage] | None = None, now=None
) -> list[InboundMail]:
    """mail_process for several stored mails, in one transaction: their rows locked in
    one statement, each mail handled in turn, what they settled written together (one
    executemany per set of fields), and the jobs they queued (their answers) written in
    one INSERT and published together once it commits. If anything in it fails, all of
    it is rolled back and the mails are processed one by one (mail_process), so that
    one bad mail never holds back the others. Returns the rows as their outcomes left
    them, in order.

    The refund and support handlers lock the account they file for (billing.locks); a
    batch holds those locks, in the mails' order, until it commits (see billing.locks).
    """
    now = now or timezone.now()
    messages = messages if messages is not None else [None] * len(mails)
    rows = None
    if len(mails) > 1:
        rows = together_or_none(
            lambda: _process_together(mails, messages, now),
            what="Inbound mails",
            first=mails[0].pk,
            last=mails[-1].pk,
        )
    if rows is None:  # one mail, or the batch failed
        rows = [
            mail_process(m, message=msg, now=now) for m, msg in zip(mails, messages, strict=True)
        ]
    return rows


def _process_together(mails: list[InboundMail], messages: list, now) -> list[InboundMail]:
    with outbox.published_together(), transaction.atomic():
        locked = {
            row.pk: row
            for row in InboundMail.objects.select_for_update()
            .filter(pk__in=[mail.pk for mail in mails])
            .order_by("pk")
        }
        rows = [locked[mail.pk] for mail in mails]
        messages = [
            message or _read_stored(row) for row, message in zip(rows, messages, strict=True)
        ]
        handlers = {handler_for(row.mailbox) for row in rows}
        handler = handlers.pop() if len(handlers) == 1 else None
        with (
            _together() as batch,
            handler.batch(messages) if handler and handler.batch else nullcontext(),
        ):
            for row, message in zip(rows, messages, strict=True):
                if row.status == InboundMail.Status.RECEIVED:
                    with _settled_once(row, into=batch.settled):
                        handler_for(row.mailbox).handle(row, message, now)
    return rows


def _read_stored(mail: InboundMail) -> MailMessage:
    with mail.raw.open("rb") as file:
        return read(file.read())


@contextmanager
def _settled_once(mail: InboundMail, *, into: list | None = None):
    """What the handler settles (mail_settle, mail_answer...) is written in one UPDATE
    when it returns, rather than one per call: the same transaction, fewer queries.
    With `into` (a batch's), it is left there to be written with the batch's."""
    mail._settling = {}
    try:
        yield
        fields = mail._settling
    finally:
        del mail._settling
    if not fields:
        return
    if into is None:
        InboundMail.objects.filter(pk=mail.pk).update(**fields)
    else:
        into.append((mail, fields))


@dataclass
class _Batch:
    """What the mails of a batch settled, and the jobs they queued (their answers and
    confirmation links), written when the batch's handling ends: the rows that settled
    the same fields in one executemany, each task's jobs in one INSERT."""

    settled: list[tuple[InboundMail, dict]] = dataclass_field(default_factory=list)
    jobs: dict = dataclass_field(default_factory=dict)  # task -> [mail id, ...]

    def write_settled(self) -> None:
        groups: dict[tuple, list[InboundMail]] = {}
        for mail, fields in self.settled:
            groups.setdefault(tuple(sorted(fields)), []).append(mail)
        for names, rows in groups.items():
            update_rows(rows, names)
        self.settled.clear()

    def write_jobs(self) -> None:
        for task, mail_ids in self.jobs.items():
            outbox.enqueue_many(task, [(mail_id,) for mail_id in mail_ids])
        self.jobs.clear()


# The batch being handled (mail_process_many), if any.
_BATCH: ContextVar[_Batch | None] = ContextVar("inbox_batch", default=None)


@contextmanager
def _together():
    batch = _Batch()
    token = _BATCH.set(batch)
    try:
        yield batch
    finally:
        _BATCH.reset(token)
    batch.write_settled()
    batch.write_jobs()


def _queue(task, mail_id: int) -> None:
    """A mail's job (its answer, its confirmation link), queued with the outcome."""
    batch = _BATCH.get()
    if batch is None:
        outbox.enqueue(task, mail_id)
    else:
        batch.jobs.setdefault(task, []).append(mail_id)


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
    _queue(send_mail_answer, mail.pk)


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
    _queue(send_mail_confirmation, mail.pk)


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
    batch = _BATCH.get()
    if batch and not {mail.message_id for mail, _ in batch.settled}.isdisjoint(refs):
        batch.write_settled()  # it quotes a mail of its batch, not written yet
    return (
        InboundMail.objects.filter(mailbox=mailbox, message_id__in=refs)
        .exclude(thread="")
        .values_list("thread", flat=True)
        .first()
    )
