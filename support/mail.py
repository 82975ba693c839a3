"""The support mailbox's handler (inbox.handlers, registered in support.apps): support by
email (1CRM terms: the designated contact writes to the support address, 24/7). inbox
stores each mail once per Message-ID and calls `handle` in the transaction that records
the outcome; answers are sent once that is committed, never twice.

- an auto-reply or bounce: recorded, never answered;
- a reply to an incident, from a member of its account: `incident_reply` when the
  sender is proven (inbox.proof: the trusted receiving server's DMARC/DKIM verdict, or
  the incident's reply address), else held for staff to accept or discard. A reply is
  found by (1) the incident's reply address, (2) In-Reply-To/References naming an
  earlier mail of the thread or an IncidentMessage's Message-ID, (3) the
  "[INC-YYYY-NNNNNN]" tag of the subject;
- a new mail from the account's designated contact: `incident_open(channel="email")`,
  P3 unless the subject says P1, P2 or urgent (P2) — when the sender is proven; else it
  waits for the contact to confirm it by a link mailed to their own address;
- anything else: an answer. A member of exactly one account is told who its contact is
  (by name only: a From header proves nothing); anyone else gets a generic answer that
  reveals nothing. A refusal (Startup Edition, lapsed, reseller, quota used) is answered
  with its message.

Attachments are kept with the incident (or the reply), checked as refund evidence is
(type from content, size, count: accounts.uploads); the others are named, not kept.
"""

import logging
import re
from dataclasses import dataclass
from email.utils import parseaddr

from django.conf import settings
from django.urls import reverse

from accounts.errors import PortalError
from accounts.models import Membership, User
from accounts.services import audit_record
from accounts.uploads import mail_uploads
from billing.locks import lock_account
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

from . import services
from .models import Incident, IncidentMessage

logger = logging.getLogger(__name__)

_S = InboundMail.Status
NOT_PROVEN = "The sender's address is not proven (no trusted DMARC or DKIM pass, no reply token)."

TAG_RX = re.compile(r"\[\s*(INC-\d{4}-\d{6,})\s*\]", re.I)
PREFIX_RX = re.compile(r"^(?:\s*(?:re|fwd?|aw|wg|sv|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
SEVERITY_RX = re.compile(r"(?<![A-Za-z0-9])P([12])(?![0-9])", re.I)
URGENT_RX = re.compile(r"\burgent\b", re.I)


@dataclass(frozen=True)
class Received:
    """What became of a mail: opened | replied | answered | held | confirm | auto |
    ignored | duplicate | failed (an unexpected error, logged: the mail should stay in
    its mailbox)."""

    outcome: str
    incident: Incident | None = None
    answer: str = ""  # the kind of answer sent: contact | generic | several | refused | held

    @property
    def stored(self) -> bool:
        return self.outcome not in ("duplicate", "failed")


_OUTCOMES = {
    _S.OPENED: "opened",
    _S.REPLY: "replied",
    _S.ANSWERED: "answered",
    _S.HELD: "held",
    _S.CONFIRM: "confirm",
    _S.AUTO: "auto",
    _S.IGNORED: "ignored",
}


def support_mail_receive(*, raw: bytes, source: str = "maildir", now=None) -> Received:
    """Handle one mail to the support address, once per Message-ID. Never raises."""
    from inbox.services import mail_receive

    try:
        mail, created = mail_receive(
            raw=raw, source=source, mailbox=InboundMail.Mailbox.SUPPORT, now=now
        )
    except Exception:
        logger.exception("Support mail could not be stored")
        return Received("failed")
    incident = Incident.objects.filter(number=mail.thread).first() if mail.thread else None
    if not created:
        return Received("duplicate", incident)
    return Received(
        _OUTCOMES.get(mail.status, "failed"), incident, (mail.parsed or {}).get("answer", "")
    )


def _record(mail, outcome: str, *, actor=None, account=None, incident=None, **changes) -> None:
    audit_record(
        actor=actor,
        action=f"support.mail_{outcome}",
        target=mail,
        account=account,
        changes={
            "message_id": mail.message_id,
            "sender": mail.sender,
            "subject": mail.subject[:200],
            "incident": incident.number if incident else "",
            **changes,
        },
    )


def _own_addresses() -> set[str]:
    return {
        parseaddr(address)[1].lower()
        for address in (settings.SUPPORT_EMAIL, settings.DEFAULT_FROM_EMAIL)
        if address
    }


def handle(mail: InboundMail, message: MailMessage, now) -> None:
    mail_settle(mail, _S.RECEIVED, parsed={"body": message.body[:20_000]})
    if message.is_auto:
        reason = message.auto_reason or "auto-reply"
        mail_settle(mail, _S.AUTO, reasons=[reason])
        _record(mail, "auto", reason=reason)
        return
    if not message.sender_email or message.sender_email in _own_addresses():
        mail_settle(mail, _S.IGNORED, reasons=["no sender to answer"])
        _record(mail, "ignored", reason="no sender to answer")
        return
    user = User.objects.with_email(message.sender_email).filter(is_active=True).first()
    incident = _thread_of(message)
    if incident is not None:
        if (
            user is not None
            and Membership.objects.filter(
                account=incident.account, user=user, is_active=True
            ).exists()
        ):
            _reply(mail, message, incident, user, now)
            return
        # Someone else's incident: they learn nothing about it.
        _answer_other(mail, user)
        return
    if user is not None:
        contact_of = list(
            Membership.objects.filter(user=user, is_active=True, is_support_contact=True)
            .select_related("account")
            .order_by("pk")[:2]
        )
        if len(contact_of) == 1:
            _open(mail, message, contact_of[0].account, user, now)
            return
        if len(contact_of) > 1:
            _answer(
                mail,
                "several",
                "You are the designated support contact of several accounts: please open "
                "the incident on the Support page of the account it concerns (or through "
                "the API), so that it counts in that account's quota.",
                actor=user,
            )
            return
    _answer_other(mail, user)


def _thread_of(message: MailMessage) -> Incident | None:
    """The reply address, then the mails it answers, then the subject's tag."""
    references = [r[:998] for r in message.references if r]
    tag = TAG_RX.search(message.subject or "")
    candidates = (
        lambda: proof.tagged_thread(message),
        lambda: thread_of_references(InboundMail.Mailbox.SUPPORT, references),
        lambda: (
            IncidentMessage.objects.filter(message_id__in=references)
            .values_list("incident__number", flat=True)
            .first()
            if references
            else None
        ),
        lambda: tag.group(1).upper() if tag else None,
    )
    for candidate in candidates:
        number = candidate()
        if number and number.startswith("INC-"):
            found = Incident.objects.filter(number=number).select_related("account").first()
            if found is not None:
                return found
    return None


def _files(message: MailMessage):
    """The mail's text and its attachments, checked once (type from content, size, count:
    accounts.uploads); the refused ones are named in the text."""
    checked, refused = mail_uploads(message.attachments, field="attachments")
    body = message.body.strip()
    if refused:
        body = f"{body}\n\n[Attachments not kept: {' '.join(refused)}]".strip()
    return body, checked


def _post(mail, message, incident, user, now) -> None:
    """The mail's text and files as the member's message on the incident."""
    body, checked = _files(message)
    services.incident_reply(
        actor=user,
        incident=incident,
        body=body,
        message_id=mail.message_id,
        attachments=checked,
        now=now,
    )


def _reply(mail, message, incident, user, now) -> None:
    proven = mail.proof or (proof.TOKEN if proof.token_proves(message, incident.number) else "")
    if not proven:
        mail_settle(
            mail, _S.HELD, thread=incident.number, account=incident.account, reasons=[NOT_PROVEN]
        )
        _answer(
            mail,
            "held",
            "We received your message. We could not confirm that it was sent from the "
            "address it names, so our team will check it before it is added to the "
            "incident. To add a message at once, reply to one of our mails about it (its "
            "reply address identifies the incident), or write on the Support page.",
            actor=user,
            state=_S.HELD,
        )
        return
    try:
        _post(mail, message, incident, user, now)
    except PortalError as exc:  # closed, resolved too long ago, empty
        _answer(
            mail,
            "refused",
            exc.message,
            actor=user,
            account=incident.account,
            incident=incident,
        )
        return
    mail_settle(mail, _S.REPLY, thread=incident.number, account=incident.account, proof=proven)
    _record(mail, "replied", actor=user, account=incident.account, incident=incident)


def _subject(parsed: MailMessage) -> str:
    subject = PREFIX_RX.sub("", " ".join((parsed.subject or "").split())).strip()
    if not subject:
        first = next((line.strip() for line in parsed.body.splitlines() if line.strip()), "")
        subject = first or "Support request by email"
    return subject[:200]


def severity_of(subject: str) -> str:
    """P3 unless the subject says P1 or P2, or urgent (P2: P1 means the system is down)."""
    match = SEVERITY_RX.search(subject or "")
    if match:
        return f"P{match.group(1)}"
    if URGENT_RX.search(subject or ""):
        return Incident.Severity.P2
    return Incident.Severity.P3


def _open(mail, message, account, user, now) -> None:
    if not mail.proof:
        mail_await_confirmation(mail, user=user, account=account, reasons=[NOT_PROVEN])
        _record(mail, "confirm", actor=user, account=account)
        return
    try:
        incident = _incident_open(mail, message, account, user, now)
    except PortalError as exc:  # Startup, lapsed, reseller, quota used, no description
        text = exc.message
        if exc.code == "extra_needed":
            text += (
                " An extra incident cannot be confirmed by mail: open it on the Support page "
                "or through the API."
            )
        _answer(mail, "refused", text, actor=user, account=account)
        return
    mail_settle(mail, _S.OPENED, thread=incident.number, account=account)
    _record(mail, "opened", actor=user, account=account, incident=incident)


def _incident_open(mail, message, account, user, now) -> Incident:
    # incident_open locks the account too; the mail's unique row already makes the same
    # mail delivered twice at once wait, then find it handled.
    lock_account(account)
    description, checked = _files(message)
    incident = services.incident_open(
        actor=user,
        account=account,
        subject=_subject(message),
        description=description[:20_000],
        severity=severity_of(message.subject),
        channel=Incident.Channel.EMAIL,
        now=now,
    )
    services.attachments_save(incident, checked, now=now)
    return incident


def _answer_other(mail, user) -> None:
    memberships = []
    if user is not None:
        memberships = list(
            Membership.objects.filter(user=user, is_active=True)
            .select_related("account")
            .order_by("pk")[:2]
        )
    if len(memberships) != 1:
        _answer(
            mail,
            "generic",
            "We could not open an incident from your mail. Support incidents are opened by "
            "the designated support contact of a customer account, writing from the address "
            "they sign in with (or on the Support page, or through the API). If someone "
            "else in your organisation is the contact, please ask them. The documentation "
            f"is at {settings.SUPPORT_DOCS_URL}.",
            actor=user,
        )
        return
    account = memberships[0].account
    contact = services.support_contact(account)
    if contact is None:
        text = (
            f"Support requests for {account.name} go through its designated support contact, "
            "and it has none yet: an owner can name one under Account Settings > Users."
        )
    else:
        text = (
            f"Support requests for {account.name} go through its designated support contact, "
            f"{contact.user.get_full_name()}. "
            "Please ask them to open the incident; an owner can change the contact under "
            "Account Settings > Users."
        )
    _answer(mail, "contact", text, actor=user, account=account)


def _answer(
    mail, kind, text, *, actor=None, account=None, incident=None, state=_S.ANSWERED
) -> None:
    """Written with the outcome; inbox sends it once the outcome is committed."""
    closing = (
        f"Your message was not added to {incident.number}."
        if incident is not None
        else "Your mail did not open an incident."
    )
    if kind == "held":
        closing = "Nothing else is needed from you."
    subject = " ".join((mail.subject or "Your support request").split())
    if not re.match(r"(?i)re\s*:", subject):
        subject = f"Re: {subject}"
    mail_settle(
        mail,
        state,
        account=account if account is not None else mail.account,
        parsed={**(mail.parsed or {}), "answer": kind},
    )
    mail_answer(
        mail,
        subject=subject,
        body=f"Hello,\n\n{text}\n\n{closing}\n\n— {settings.PORTAL_NAME} support\n",
    )
    if state == _S.ANSWERED:
        _record(mail, "answered", actor=actor, account=account, incident=incident, kind=kind)


# --- confirmation and held replies -----------------------------------------------------


def _message_of(mail: InboundMail) -> MailMessage:
    with mail.raw.open("rb") as file:
        return read_mail(file.read())


def confirm(mail: InboundMail, user, now) -> str:
    """The designated contact follows the link: the incident is opened as theirs."""
    account = mail.account
    if (
        account is None
        or not Membership.objects.filter(
            account=account, user=user, is_active=True, is_support_contact=True
        ).exists()
    ):
        raise PortalError(
            "Only the account's designated support contact can open an incident.",
            code="not_allowed",
        )
    incident = _incident_open(mail, _message_of(mail), account, user, now)
    mail_settle(mail, _S.OPENED, thread=incident.number)
    _record(mail, "opened", actor=user, account=account, incident=incident)
    return reverse("incident_detail", args=[incident.number])


def accept(mail: InboundMail, staff, now) -> None:
    """Staff accept a held reply: it is posted as the member of the account who wrote."""
    message = _message_of(mail)
    incident = Incident.objects.filter(number=mail.thread).select_related("account").first()
    user = User.objects.filter(email__iexact=message.sender_email or "", is_active=True).first()
    if incident is None or user is None:
        raise PortalError("The sender is not a member of the incident's account.")
    _post(mail, message, incident, user, now)
    _record(mail, "replied", actor=staff, account=incident.account, incident=incident)


def describe(mail: InboundMail) -> str:
    return f"open a support incident “{(mail.subject or 'Support request by email')[:120]}”"


def handler() -> Handler:
    return Handler(
        mailbox=InboundMail.Mailbox.SUPPORT,
        handle=handle,
        confirm=confirm,
        accept=accept,
        describe=describe,
    )
