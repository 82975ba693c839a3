"""Support by email (1CRM terms: the designated contact writes to the support address,
24/7). `support_mail_receive(raw=...)` reads a mail with the refund parser
(refunds.mail.parse: pure, never raises) and does one of:

- an auto-reply or bounce: recorded, never answered;
- a reply to an incident, from a member of its account: `incident_reply`. A reply is
  found by (1) the "[INC-YYYY-NNNNNN]" tag of the subject (outgoing mail carries it,
  support/emails.py), else (2) In-Reply-To/References naming an IncidentMessage's
  Message-ID or the Message-ID of the mail that opened the incident;
- a new mail from the account's designated contact: `incident_open(channel="email")`,
  P3 unless the subject says P1, P2 or urgent (P2);
- anything else: an answer. A member of exactly one account is told who its contact is
  (by name only: a From header proves nothing); anyone else gets a generic answer that
  reveals nothing. A refusal (Startup Edition, lapsed, reseller, quota used) is answered
  with its message.

Each mail is handled once per Message-ID (the hash of the mail when it has none): a
reply is an IncidentMessage, whose `message_id` is unique; every mail, whatever became
of it, is recorded as an AuditEvent `support.mail_<outcome>` (object type
"support.mail", object id the SHA-256 of the Message-ID, changes: the Message-ID,
sender, subject and incident). That row also remembers the Message-ID of a mail that
opened an incident, so a reply to it threads without a new column. No model change.

The outcome's answer is sent before the mail is recorded: if sending fails the mail is
not recorded, stays in its mailbox and is tried again.
"""

import hashlib
import logging
import re
from dataclasses import dataclass
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import Account, AuditEvent, Membership, User
from billing.locks import lock_account
from refunds.mail.parse import parse
from refunds.mail.types import ParsedMail

from . import services
from .models import Incident, IncidentMessage

logger = logging.getLogger(__name__)

MAIL_TYPE = "support.mail"
TAG_RX = re.compile(r"\[\s*(INC-\d{4}-\d{6,})\s*\]", re.I)
PREFIX_RX = re.compile(r"^(?:\s*(?:re|fwd?|aw|wg|sv|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
SEVERITY_RX = re.compile(r"(?<![A-Za-z0-9])P([12])(?![0-9])", re.I)
URGENT_RX = re.compile(r"\burgent\b", re.I)


@dataclass(frozen=True)
class Received:
    """What became of a mail: opened | replied | answered | auto | ignored | duplicate |
    failed (an unexpected error, logged: the mail should stay in its mailbox)."""

    outcome: str
    incident: Incident | None = None
    answer: str = ""  # the kind of answer sent: contact | generic | several | refused

    @property
    def stored(self) -> bool:
        return self.outcome not in ("duplicate", "failed")


def support_mail_receive(*, raw: bytes, now=None) -> Received:
    """Handle one mail to the support address, once per Message-ID. Never raises."""
    now = now or timezone.now()
    message_id = None
    try:
        parsed = parse(raw)
        message_id = _message_id(parsed, raw)
        if _seen(message_id):
            return Received("duplicate")
        return _process(parsed, message_id, now)
    except Exception:
        logger.exception("Support mail %s could not be handled", message_id)
        return Received("failed")


# --- once per Message-ID -------------------------------------------------------------


def _message_id(parsed: ParsedMail, raw: bytes) -> str:
    # A mail without a Message-ID is still handled once: its content names it.
    return (parsed.message_id or f"sha256:{hashlib.sha256(raw).hexdigest()}")[:998]


def _key(message_id: str) -> str:
    return hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()


def _seen(message_id: str) -> bool:
    return (
        IncidentMessage.objects.filter(message_id=message_id).exists()
        or AuditEvent.objects.filter(object_type=MAIL_TYPE, object_id=_key(message_id)).exists()
    )


def _record(
    parsed: ParsedMail,
    message_id: str,
    outcome: str,
    *,
    actor=None,
    account: Account | None = None,
    incident: Incident | None = None,
    **changes,
) -> None:
    sender = parsed.sender_email or ""
    AuditEvent.objects.create(
        actor=actor,
        actor_email=getattr(actor, "email", "") or sender[:254],
        account=account,
        action=f"support.mail_{outcome}",
        object_type=MAIL_TYPE,
        object_id=_key(message_id),
        object_repr=f"{sender}: {parsed.subject}"[:300],
        changes={
            "message_id": message_id,
            "sender": sender,
            "subject": parsed.subject[:200],
            "incident": incident.number if incident else "",
            **changes,
        },
    )


# --- what the mail is ------------------------------------------------------------------


def _own_addresses() -> set[str]:
    return {
        parseaddr(address)[1].lower()
        for address in (settings.SUPPORT_EMAIL, settings.DEFAULT_FROM_EMAIL)
        if address
    }


def _process(parsed: ParsedMail, message_id: str, now) -> Received:
    if parsed.is_auto:
        logger.info(
            "Support mail %s is automatic (%s): not answered", message_id, parsed.auto_reason
        )
        _record(parsed, message_id, "auto", reason=parsed.auto_reason or "auto-reply")
        return Received("auto")
    if not parsed.sender_email or parsed.sender_email in _own_addresses():
        _record(parsed, message_id, "ignored", reason="no sender to answer")
        return Received("ignored")
    user = User.objects.filter(email__iexact=parsed.sender_email, is_active=True).first()
    incident = _thread_of(parsed)
    if incident is not None:
        if (
            user is not None
            and Membership.objects.filter(
                account=incident.account, user=user, is_active=True
            ).exists()
        ):
            return _reply(parsed, message_id, incident, user, now)
        # Someone else's incident: they learn nothing about it.
        return _answer_other(parsed, message_id, user)
    if user is not None:
        contact_of = list(
            Membership.objects.filter(user=user, is_active=True, is_support_contact=True)
            .select_related("account")
            .order_by("pk")[:2]
        )
        if len(contact_of) == 1:
            return _open(parsed, message_id, contact_of[0].account, user, now)
        if len(contact_of) > 1:
            return _answer(
                parsed,
                message_id,
                "several",
                "You are the designated support contact of several accounts: please open "
                "the incident on the Support page of the account it concerns (or through "
                "the API), so that it counts in that account's quota.",
                actor=user,
            )
    return _answer_other(parsed, message_id, user)


def _thread_of(parsed: ParsedMail) -> Incident | None:
    tag = TAG_RX.search(parsed.subject or "")
    if tag:
        incident = (
            Incident.objects.filter(number=tag.group(1).upper()).select_related("account").first()
        )
        if incident is not None:
            return incident
    references = [ref[:998] for ref in parsed.references if ref]
    if not references:
        return None
    message = (
        IncidentMessage.objects.filter(message_id__in=references)
        .select_related("incident__account")
        .first()
    )
    if message is not None:
        return message.incident
    opened = (
        AuditEvent.objects.filter(
            object_type=MAIL_TYPE,
            object_id__in=[_key(ref) for ref in references],
            action="support.mail_opened",
        )
        .values_list("changes", flat=True)
        .first()
    )
    if opened and opened.get("incident"):
        return Incident.objects.filter(number=opened["incident"]).select_related("account").first()
    return None


def _reply(parsed, message_id, incident, user, now) -> Received:
    body = parsed.body.strip()
    if parsed.attachments:
        names = ", ".join(a.name or "attachment" for a in parsed.attachments)
        body += (
            f"\n\n[Attachments not kept: {names}. Mail does not carry files onto incidents.]"
        ).strip()
    try:
        with transaction.atomic():
            services.incident_reply(
                actor=user, incident=incident, body=body, message_id=message_id, now=now
            )
            _record(
                parsed,
                message_id,
                "replied",
                actor=user,
                account=incident.account,
                incident=incident,
            )
    except IntegrityError:  # the same mail delivered twice at once
        return Received("duplicate", incident)
    except PortalError as exc:  # closed, resolved too long ago, empty
        return _answer(
            parsed,
            message_id,
            "refused",
            exc.message,
            actor=user,
            account=incident.account,
            incident=incident,
        )
    return Received("replied", incident)


def _subject(parsed: ParsedMail) -> str:
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


class _Duplicate(Exception):
    pass


def _open(parsed, message_id, account, user, now) -> Received:
    try:
        with transaction.atomic():
            # incident_open locks the account too: the same mail delivered twice at once
            # waits here and then finds the first one recorded.
            lock_account(account)
            if _seen(message_id):
                raise _Duplicate
            incident = services.incident_open(
                actor=user,
                account=account,
                subject=_subject(parsed),
                description=parsed.body[:20_000],
                severity=severity_of(parsed.subject),
                channel=Incident.Channel.EMAIL,
                now=now,
            )
            _record(parsed, message_id, "opened", actor=user, account=account, incident=incident)
    except _Duplicate:
        return Received("duplicate")
    except PortalError as exc:  # Startup, lapsed, reseller, quota used, no description
        text = exc.message
        if exc.code == "extra_needed":
            text += (
                " An extra incident cannot be confirmed by mail: open it on the Support page "
                "or through the API."
            )
        return _answer(parsed, message_id, "refused", text, actor=user, account=account)
    return Received("opened", incident)


def _answer_other(parsed, message_id, user) -> Received:
    memberships = []
    if user is not None:
        memberships = list(
            Membership.objects.filter(user=user, is_active=True)
            .select_related("account")
            .order_by("pk")[:2]
        )
    if len(memberships) != 1:
        return _answer(
            parsed,
            message_id,
            "generic",
            "We could not open an incident from your mail. Support incidents are opened by "
            "the designated support contact of a customer account, writing from the address "
            "they sign in with (or on the Support page, or through the API). If someone "
            "else in your organisation is the contact, please ask them. The documentation "
            f"is at {settings.SUPPORT_DOCS_URL}.",
            actor=user,
        )
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
            f"{contact.user.get_full_name()} (1CRM terms: a single designated contact). "
            "Please ask them to open the incident; an owner can change the contact under "
            "Account Settings > Users."
        )
    return _answer(parsed, message_id, "contact", text, actor=user, account=account)


def _answer(parsed, message_id, kind, text, *, actor=None, account=None, incident=None) -> Received:
    closing = (
        f"Your message was not added to {incident.number}."
        if incident is not None
        else "Your mail did not open an incident."
    )
    """Sent first, recorded then: a mail that could not be answered is tried again."""
    subject = " ".join((parsed.subject or "Your support request").split())
    if not re.match(r"(?i)re\s*:", subject):
        subject = f"Re: {subject}"
    headers = {"Auto-Submitted": "auto-replied"}  # RFC 3834: no auto-reply loops
    if parsed.message_id:
        headers["In-Reply-To"] = headers["References"] = f"<{parsed.message_id}>"
    EmailMessage(
        subject=subject[:200],
        body=f"Hello,\n\n{text}\n\n{closing}\n\n— {settings.PORTAL_NAME} support\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[parsed.sender_email],
        reply_to=[settings.SUPPORT_EMAIL],
        headers=headers,
    ).send()
    _record(
        parsed, message_id, "answered", actor=actor, account=account, incident=incident, kind=kind
    )
    return Received("answered", incident, kind)
