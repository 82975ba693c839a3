"""Read a mail: `read(raw: bytes) -> MailMessage`, for every mailbox of the portal.

Pure (stdlib `email` only: no Django, no ORM, no clock) and it never raises: whatever
the bytes, the answer is a MailMessage whose `problems` say in plain sentences what was
odd. The work is bounded: at most MAX_TEXT (1 MB) of text parts is decoded (base64 and
quoted-printable are decoded only that far); attachments are kept as bytes (at most
MAX_ATTACHMENTS). A header that email.policy.default cannot read is decoded the compat32
way; a mail it cannot read at all is read again with compat32.

What it reads, whatever the mailbox (each app reads its own fields from `body`):

- Subject: "Re:", "Fwd:", "AW:", "WG:", "SV:"... prefixes (repeated, any case) are
  skipped in `subject_core`; `subject` keeps at most MAX_SUBJECT characters.
- Threading: Message-ID, then In-Reply-To and References (without angle brackets).
- Automatic mail: Auto-Submitted, X-Auto-Response-Suppress, Precedence bulk/auto_reply,
  X-Autoreply, mailer-daemon and postmaster senders, delivery reports, "Out of office"
  and "Undeliverable" subjects: `is_auto`, never answered.
- New text: the body without quoted history ("On ... wrote:", "> " lines,
  "-----Original Message-----", Outlook "From: ... Sent: ..." blocks) and without the
  signature (a "-- " line, "Sent from my iPhone" and the like, or a sign-off such as
  "Thanks," / "Best regards," followed by a name: on its line ("Thanks, Jane") or in
  at most four short lines to the end, unless those lines hold a reference number such
  as ORD-2026-000123). A forwarded message (a "Forwarded message" marker, a
  "Fwd:"-style subject over a quoted block, or an attached message/rfc822) is read too:
  `body` is the new text followed by the forwarded text; `new_text` is the new text.
- Sender proof material: the From address and domain, the addresses it was delivered
  to (To, Cc, Delivered-To, X-Original-To: a reply token travels in a plus address),
  and every Authentication-Results header as written (proof.py judges them).
"""

from __future__ import annotations

import binascii
import codecs
import quopri
import re
from dataclasses import dataclass
from email import policy as email_policy
from email.feedparser import BytesFeedParser
from email.header import decode_header
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.policy import EmailPolicy
from email.utils import getaddresses
from html.parser import HTMLParser

MAX_SUBJECT = 500
MAX_TEXT = 1_000_000  # bytes of text decoded, per mail
MAX_ATTACHMENTS = 25
MAX_HEADER = 20_000  # characters of a header value decoded
MAX_DEPTH = 20  # MIME nesting
MAX_PARTS = 500
MAX_FORWARDS = 3  # forwarded messages inside forwarded messages
MAX_REFERENCES = 100
MAX_RECIPIENTS = 50

__all__ = ["MAX_ATTACHMENTS", "MAX_SUBJECT", "MAX_TEXT", "Attachment", "MailMessage", "read"]


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str  # as declared by the mail; the apps check the content
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class MailMessage:
    message_id: str | None = None  # without angle brackets
    references: tuple[str, ...] = ()  # In-Reply-To then References, without brackets
    sender_email: str | None = None  # lower-cased address of From (or Reply-To, Sender)
    display_name: str = ""  # the From display name
    from_domain: str | None = None  # the domain of the From header only (DMARC aligns it)
    recipients: tuple[str, ...] = ()  # To, Cc, Delivered-To, X-Original-To, lower-cased
    authentication_results: tuple[str, ...] = ()  # each header's value, top first
    subject: str = ""  # decoded, one line, at most MAX_SUBJECT characters
    subject_full: str = ""  # decoded, one line, whole
    subject_core: str = ""  # without Re:/Fwd:... prefixes
    is_auto: bool = False  # auto-reply, bounce, mailer-daemon: recorded, never answered
    auto_reason: str = ""
    body: str = ""  # the new text and any forwarded text, without quotes and signature
    new_text: str = ""  # the new text alone
    attachments: tuple[Attachment, ...] = ()
    problems: tuple[str, ...] = ()
    failure: str = ""  # "not bytes" or "unreadable" when nothing could be read


def read(raw: bytes) -> MailMessage:
    """What a mail says, as far as it can be read; never raises."""
    try:
        data = _as_bytes(raw)
    except Exception:
        return MailMessage(problems=("The input is not bytes.",), failure="not bytes")
    failure = None
    for policy in (_reading_policy(), email_policy.compat32):
        try:
            return _Reader(data, policy).read()
        except Exception as exc:  # the next policy, then a bare answer
            failure = failure or exc
    return MailMessage(
        problems=(f"The mail could not be read ({type(failure).__name__}).",),
        failure="unreadable",
    )


def _as_bytes(raw) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return bytes(raw)


# --- parsing: email.policy.default's reading, without its repeated costs ---------------

FEED_CHUNK = 64 * 1024


class _Registry(HeaderRegistry):
    """The default header registry, creating each header class once: the stdlib creates
    a new class on every header fetched, a tenth of a millisecond each."""

    def __init__(self):
        super().__init__()
        self._made: dict[type, type] = {}

    def __getitem__(self, name):
        cls = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(cls)
        if made is None:
            made = self._made[cls] = super().__getitem__(name)
        return made


_REGISTRY = _Registry()


class _ReadingPolicy(EmailPolicy):
    """email.policy.default, each header of a message parsed once: the stdlib parses a
    header again on every fetch (Content-Type some ten times per part). Header objects
    are immutable, so one parse serves every fetch of the same message."""

    parsed_headers = None  # (name, raw value) -> header object, one dict per message

    def header_fetch_parse(self, name, value):
        if self.parsed_headers is None or hasattr(value, "name"):
            return super().header_fetch_parse(name, value)
        key = (name, value)
        header = self.parsed_headers.get(key)
        if header is None:
            header = self.parsed_headers[key] = super().header_fetch_parse(name, value)
        return header


_READING = _ReadingPolicy(header_factory=_REGISTRY)


def _reading_policy() -> EmailPolicy:
    return _READING.clone(parsed_headers={})


def _parse(raw: bytes, policy) -> Message:
    """BytesParser.parsebytes without its copies: it decodes the whole mail to one str
    and reads it through a StringIO (four bytes a character), so a 30 MB mail took
    150 MB before a line was parsed. The same feed parser, fed in slices, reads the same
    message."""
    parser = BytesFeedParser(policy=policy)
    view = memoryview(raw)
    for start in range(0, len(raw), FEED_CHUNK):
        parser.feed(bytes(view[start : start + FEED_CHUNK]))
    return parser.close()


# --- patterns -------------------------------------------------------------------------

# A portal reference number (ORD-2026-000123, RR-…, INC-…): lines holding one are not a
# signature.
_NUMBER_RX = re.compile(r"(?<![A-Za-z0-9])(?:ORD|RR|INC)\s*[-\u2010-\u2014_]\s*\d{4}", re.I)
_PREFIX_RX = re.compile(
    r"^[ \t]*(?:\[[^\]\n]{1,40}\][ \t]*)?(re|fwd|fw|aw|wg|sv|vs|antw|tr|rv|enc|wtr)[ \t]*"
    r"(?:(?:\[\d{1,4}\]|\(\d{1,4}\))[ \t]*)?[:\uff1a][ \t]*",
    re.I,
)
_FORWARD_PREFIXES = {"fwd", "fw", "wg", "tr", "rv", "enc", "wtr"}
_AUTO_SUBJECT_RX = re.compile(
    r"^\s*(?:automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|out of (?:the )?office"
    r"|abwesenheitsnotiz|automatische antwort|réponse automatique|delivery status notification"
    r"|undeliverable|undelivered mail|mail delivery failed|returned mail)\b",
    re.I,
)
_EMAIL_RX = re.compile(
    r"[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}"
)
_ID_RX = re.compile(r"<([^<>\s]{1,500})>")
_C1_RX = re.compile(r"[\x80-\x9f]")
_CONTROL_RX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_ENCODED_WORD_RX = re.compile(r"=\?([^?\s*]{1,60})(?:\*[^?\s]{0,20})?\?[bBqQ]\?")

# Quoted history and forwards (matched on stripped lines).
_FORWARD_MARK_RX = re.compile(
    r"^[-=_*\s]*(?:forwarded message|begin forwarded message|original message follows"
    r"|weitergeleitete nachricht|message transféré|mensaje reenviado)[-=_*:\s]*$",
    re.I,
)
_ORIGINAL_RX = re.compile(
    r"^[-_=*\s]*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original"
    r"|messaggio originale)[-_=*:\s]*$",
    re.I,
)
_UNDERSCORES_RX = re.compile(r"^_{10,}$")
_HEADER_FROM_RX = re.compile(r"^\*?(?:from|von|de|van|från|fra)[ \t]*(?:\*[ \t]*)?:", re.I)
_HEADER_SENT_RX = re.compile(
    r"^\*?(?:sent|date|gesendet|datum|envoyé|enviado|fecha|skickat|sendt|verzonden)[ \t]*(?:\*[ \t]*)?:",
    re.I,
)
_HEADER_LINE_RX = re.compile(
    r"^\*?(?:from|sent|date|to|cc|bcc|reply-to|von|gesendet|datum|an|de|envoyé|à|a|para|enviado"
    r"|fecha|subject|betreff|objet|asunto|oggetto)[ \t]*(?:\*[ \t]*)?:",
    re.I,
)
_SUBJECT_LINE_RX = re.compile(
    r"^\*?(?:subject|betreff|objet|asunto|oggetto)[ \t]*(?:\*[ \t]*)?:", re.I
)
_WROTE_RX = re.compile(
    r"^(?:on\b.{0,300}\bwrote|am\b.{0,300}\bschrieb.{0,100}|le\b.{0,300}\ba écrit"
    r"|el\b.{0,300}\bescribió|il\b.{0,300}\bha scritto|op\b.{0,300}\bschreef"
    r"|.{0,200}<[^<>\s]+@[^<>\s]+>\s*wrote)\s*:\s*$",
    re.I,
)
# Signatures.
_MOBILE_SIGNATURE_RX = re.compile(
    r"^(?:sent from (?:my |the )?(?:iphone|ipad|android|mobile|samsung|galaxy|phone|blackberry"
    r"|huawei|pixel|yahoo mail|mail for windows|outlook|aol|proton ?mail)\b.*"
    r"|get outlook for (?:ios|android).*|sent with proton ?mail.*|von meinem iphone gesendet.*"
    r"|envoyé de mon iphone.*|enviado desde mi iphone.*)$",
    re.I,
)
_NAME_WORDS = r"[A-ZÀ-ÖØ-Þ][\w.'\u2019-]{0,30}(?:\s+[A-ZÀ-ÖØ-Þ][\w.'\u2019-]{0,30}){0,3}"
_SIGN_OFF_RX = re.compile(
    r"^(?:(?:many |a lot of )?thanks?(?: (?:you|a lot|again|in advance|so much|very much))*"
    r"|thank you(?: (?:very much|so much|in advance|again|for your help))?|thx|ty|cheers|ta"
    r"|best(?: regards| wishes)?|(?:kind|warm|warmest|best|many|with kind) regards|regards"
    r"|br|rgds|sincerely|yours(?: sincerely| truly| faithfully)?|respectfully|take care"
    r"|mit freundlichen grüßen|viele grüße|liebe grüße|grüße|cordialement|bien à vous"
    r"|saludos(?: cordiales)?|atentamente|un saludo|med vänliga hälsningar|hälsningar"
    r"|met vriendelijke groet|groeten)[\s,.!]*"
    rf"(?:(?<=,)\s*(?-i:(?P<name>{_NAME_WORDS}))[.!]?)?$",
    re.I,
)

_DEFECTS = {
    "StartBoundaryNotFoundDefect": "The MIME boundary was never found: the parts could not be separated.",
    "CloseBoundaryNotFoundDefect": "The closing MIME boundary is missing.",
    "NoBoundaryInMultipartDefect": "A multipart part has no boundary.",
    "MultipartInvariantViolationDefect": "A multipart part is not multipart.",
    "MissingHeaderBodySeparatorDefect": "The headers do not end with a blank line.",
    "FirstHeaderLineIsContinuationDefect": "The first header line is a continuation line.",
    "MisplacedEnvelopeHeaderDefect": "A misplaced envelope header was found.",
    "InvalidBase64PaddingDefect": "A base64 part has bad padding.",
    "InvalidBase64CharactersDefect": "A base64 part has invalid characters.",
    "InvalidBase64LengthDefect": "A base64 part has an invalid length.",
    "InvalidMultipartContentTransferEncodingDefect": "A multipart part declares an invalid transfer encoding.",
}


# --- the reader -----------------------------------------------------------------------


class _Reader:
    def __init__(self, raw: bytes, policy):
        self.raw = raw
        self.policy = policy
        self.problems: list[str] = []
        self.msg = _parse(raw, policy)
        self.budget = MAX_TEXT
        self.truncated = False
        self.attachments: list[Attachment] = []
        self.skipped: list[str] = []
        self.collect = True

    def note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    # headers ---------------------------------------------------------------------------

    def raw_header(self, name: str, msg: Message | None = None) -> str | None:
        msg = self.msg if msg is None else msg
        for key, value in msg.raw_items():
            if key.lower() == name.lower():
                return value if isinstance(value, str) else str(value)
        return None

    def header(self, name: str, msg: Message | None = None) -> str:
        """The decoded value, on one line; "" when absent. Broken headers are read with
        compat32's decoder, unknown charsets with replacement characters."""
        msg = self.msg if msg is None else msg
        raw = self.raw_header(name, msg)
        if raw is None:
            return ""
        for charset in _ENCODED_WORD_RX.findall(raw[:MAX_HEADER]):
            if _codec(charset) is None:
                self.note(
                    f"Unknown charset “{_short(charset)}” in the {name} header; read as UTF-8."
                )
        value = None
        if len(raw) <= MAX_HEADER and self.policy is not email_policy.compat32:
            try:
                value = str(msg.get(name, ""))
            except Exception:
                self.note(f"The {name} header is malformed.")
        if value is None:
            value = _decode_header_compat(raw[:MAX_HEADER])
        return _one_line(_clean(value))

    def read(self) -> MailMessage:
        msg = self.msg
        if not list(msg.raw_items()):
            self.note("No mail headers found: this may not be an email.")
        self.note_defects(msg)
        subject_full = self.header("Subject")
        subject = subject_full
        if len(subject_full) > MAX_SUBJECT:
            subject = subject_full[:MAX_SUBJECT]
            self.note(
                f"The subject is {len(subject_full)} characters long; only the first "
                f"{MAX_SUBJECT} are kept."
            )
        core, forwarded_subject = _strip_prefixes(subject_full)
        sender_email, display_name = self.sender()
        from_address = self.address("From")[0] if self.raw_header("From") is not None else None
        is_auto, auto_reason = self.auto(sender_email, display_name, subject_full)

        text, forwards = self.contents(msg, depth=0, read_forwards=not is_auto)
        if self.skipped:
            self.note(
                f"{len(self.skipped)} attachment(s) beyond the first {MAX_ATTACHMENTS} were "
                f"ignored: {', '.join(self.skipped[:5])}{', ...' if len(self.skipped) > 5 else '.'}"
            )
        new_text, forwarded_text = _split_history(text, forwarded_subject)
        parts = [new_text] if new_text else []
        if forwarded_text:
            parts.append(forwarded_text)
        parts.extend(forwards)
        body = "\n\n---------- Forwarded message ----------\n".join(p for p in parts if p)
        if self.truncated:
            self.note(
                f"The text is larger than {MAX_TEXT // 1_000_000} MB; only the first part was read."
            )
        return MailMessage(
            message_id=self.message_id(),
            references=self.references(),
            sender_email=sender_email,
            display_name=display_name,
            from_domain=from_address.rpartition("@")[2] if from_address else None,
            recipients=self.recipients(),
            authentication_results=self.all_values("Authentication-Results"),
            subject=subject,
            subject_full=subject_full,
            subject_core=core,
            is_auto=is_auto,
            auto_reason=auto_reason,
            body=body,
            new_text=new_text,
            attachments=tuple(self.attachments),
            problems=tuple(self.problems),
        )

    def all_values(self, name: str) -> tuple[str, ...]:
        """Every value of a header, as written (unfolded), top first."""
        values = []
        for key, value in self.msg.raw_items():
            if key.lower() == name.lower():
                text = value if isinstance(value, str) else str(value)
                values.append(_one_line(_clean(text[:MAX_HEADER])))
        return tuple(values[:20])

    def recipients(self) -> tuple[str, ...]:
        found: list[str] = []
        for name in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
            for value in self.all_values(name):
                try:
                    pairs = getaddresses([_decode_header_compat(value)])
                except Exception:  # an unreadable header names no recipient
                    pairs = []
                for _display, address in pairs:
                    address = _clean(address).strip().strip("<>").lower()
                    if "@" in address and address not in found:
                        found.append(address)
        return tuple(found[:MAX_RECIPIENTS])

    def note_defects(self, msg: Message) -> None:
        for part, _depth in _walk(msg):
            for defect in getattr(part, "defects", ()):
                name = type(defect).__name__
                self.note(_DEFECTS.get(name, f"MIME defect: {name}."))

    def sender(self) -> tuple[str | None, str]:
        for name in ("From", "Reply-To", "Sender"):
            raw = self.raw_header(name)
            if raw is None:
                if name == "From":
                    self.note("The From header is missing.")
                continue
            address, display = self.address(name)
            if address:
                return address, display
            if name == "From":
                self.note("The From header has no usable address.")
        return None, ""

    def address(self, name: str) -> tuple[str | None, str]:
        pairs: list[tuple[str, str]] = []
        raw = self.raw_header(name) or ""
        if self.policy is not email_policy.compat32 and len(raw) <= MAX_HEADER:
            try:
                header = self.msg.get(name)
                pairs = [
                    (a.display_name, f"{a.username}@{a.domain}" if a.domain else a.username)
                    for a in header.addresses
                ]
            except Exception:
                pairs = []
        if not pairs:
            try:
                pairs = getaddresses([_decode_header_compat(raw[:MAX_HEADER])])
            except Exception:
                pairs = []
        for display, address in pairs:
            address = _clean(address).strip().strip("<>").lower()
            if re.fullmatch(r"[^@\s<>]{1,64}@[^@\s<>]{1,190}", address):
                return address, _one_line(_clean(display)).strip("\"' ")[:200]
        return None, ""

    def auto(self, sender: str | None, display: str, subject: str) -> tuple[bool, str]:
        value = self.header("Auto-Submitted").lower().split(";")[0].strip()
        if value and value != "no":
            return True, f"Auto-Submitted: {value}"
        value = self.header("X-Auto-Response-Suppress").strip()
        if value and value.lower() != "none":
            return True, f"X-Auto-Response-Suppress: {value}"
        value = self.header("Precedence").lower().strip()
        if value in ("bulk", "auto_reply", "junk", "auto-reply"):
            return True, f"Precedence: {value}"
        for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
            if self.header(name):
                return True, f"{name}: {self.header(name)}"
        local = (sender or "").split("@")[0]
        if local in ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"):
            return True, f"From {local}"
        if re.match(r"mail delivery (?:subsystem|system)", display, re.I):
            return True, f"From {display}"
        if _content_type(self.msg, 0) in ("multipart/report", "message/delivery-status"):
            return True, "A delivery status notification (multipart/report)"
        if _AUTO_SUBJECT_RX.match(_strip_prefixes(subject)[0]):
            return True, f"Subject: {_strip_prefixes(subject)[0][:60]}"
        return False, ""

    def message_id(self) -> str | None:
        raw = self.header("Message-ID")
        ids = _ids(raw)
        return ids[0][:500] if ids else None

    def references(self) -> tuple[str, ...]:
        seen: list[str] = []
        for name in ("In-Reply-To", "References"):
            for ident in _ids(self.header(name)):
                if ident not in seen:
                    seen.append(ident)
        return tuple(seen[:MAX_REFERENCES])

    # body ------------------------------------------------------------------------------

    def contents(self, msg: Message, depth: int, read_forwards: bool):
        """(text of the body parts, forwarded texts) of a message; its attachments are
        added to self.attachments."""
        plain: list[Message] = []
        html: list[Message] = []
        forwards: list[str] = []
        for part, level in _walk(msg):
            ctype = _content_type(part, level)
            disposition = _disposition(part)
            filename = _filename(part)
            if ctype == "message/rfc822" and level > 0:
                inner = _inner_message(part)
                if filename:  # an attached .eml is evidence as it is
                    self.attach(filename, ctype, lambda i=inner: _message_bytes(i))
                if inner is not None and read_forwards and depth < MAX_FORWARDS:
                    forwards.append(self.forwarded(inner, depth + 1, attachments=not filename))
                continue
            if part.is_multipart() or ctype == "message/delivery-status":
                continue
            is_text = ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")
            if (filename or disposition == "attachment") and not (
                is_text and disposition == "inline"
            ):
                if self.collect:
                    self.attach(filename or "attachment", ctype, lambda p=part: _payload_bytes(p))
                continue
            if ctype == "text/html":
                html.append(part)
            elif is_text or (level == 0 and ctype.startswith("text/")):
                plain.append(part)  # a broken multipart is read as text
        text = "\n\n".join(t for t in (self.text(p) for p in plain) if t.strip())
        if not text.strip() and html:
            text = "\n\n".join(_html_to_text(self.text(p)) for p in html)
        return _normalise(text), [f for f in forwards if f.strip()]

    def forwarded(self, inner: Message, depth: int, attachments: bool) -> str:
        self.note_defects(inner)
        subject = self.header("Subject", inner)
        collect, self.collect = self.collect, attachments
        try:
            text, forwards = self.contents(inner, depth, read_forwards=True)
        finally:
            self.collect = collect
        new_text, forwarded_text = _split_history(text, _strip_prefixes(subject)[1])
        pieces = [f"Subject: {subject[:MAX_SUBJECT]}"] if subject else []
        pieces += [t for t in (new_text, forwarded_text, *forwards) if t]
        return "\n\n".join(pieces)

    def attach(self, name: str, ctype: str, content) -> None:
        name = _safe_filename(name)
        if len(self.attachments) >= MAX_ATTACHMENTS:
            self.skipped.append(name)
            return
        try:
            data = content()
        except Exception:
            data = b""
            self.note(f"The attachment “{name}” could not be decoded.")
        self.attachments.append(Attachment(name=name, content_type=ctype, content=data))

    def text(self, part: Message) -> str:
        """At most the remaining budget of the part's text, decoded from its charset."""
        if self.budget <= 0:
            self.truncated = True
            return ""
        data, more = _payload_head(part, self.budget)
        if more or len(data) > self.budget:
            self.truncated = True
        data = data[: self.budget]
        self.budget -= len(data)
        charset = _param(part, "charset")
        codec = _codec(charset) if charset else "utf-8"
        if codec is None:
            self.note(f"Unknown charset “{_short(charset)}” in the body; read as UTF-8.")
            codec = "utf-8"
        try:
            text = data.decode(codec, "replace")
        except Exception:
            text = data.decode("utf-8", "replace")
        return _clean(text)


# --- MIME helpers ---------------------------------------------------------------------


def _walk(msg: Message):
    """Parts depth first, at most MAX_PARTS, not below MAX_DEPTH, not into attached
    messages (message/rfc822 is yielded, its inside is read as a forward)."""
    stack = [(msg, 0)]
    count = 0
    while stack and count < MAX_PARTS:
        part, level = stack.pop()
        count += 1
        yield part, level
        if level >= MAX_DEPTH or (
            level > 0
            and _content_type(part, level) in ("message/rfc822", "message/delivery-status")
        ):
            continue
        try:
            payload = part.get_payload() if part.is_multipart() else None
        except Exception:
            payload = None
        if isinstance(payload, list):
            stack.extend((p, level + 1) for p in reversed(payload) if isinstance(p, Message))


def _content_type(part: Message, level: int) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "text/plain" if level == 0 else "application/octet-stream"


def _disposition(part: Message) -> str | None:
    try:
        value = part.get_content_disposition()
        return value.lower() if isinstance(value, str) else None
    except Exception:
        return None


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    if isinstance(value, tuple):  # RFC 2231: (charset, language, value)
        try:
            value = value[2]
        except Exception:
            return ""
    return _clean(str(value or "")).strip()[:200]


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        name = _param(part, "name")
    return _one_line(_clean(str(name))) if name else ""


def _safe_filename(name: str) -> str:
    name = re.split(r"[\\/]", name)[-1].strip().strip(".") or "attachment"
    return name[:255]


def _inner_message(part: Message) -> Message | None:
    try:
        payload = part.get_payload()
    except Exception:
        return None
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def _message_bytes(msg: Message | None) -> bytes:
    if msg is None:
        return b""
    return msg.as_bytes(policy=email_policy.compat32)


def _cte(part: Message) -> str:
    try:
        return str(part.get("Content-Transfer-Encoding", "") or "").strip().lower()
    except Exception:
        return ""


def _payload_bytes(part: Message) -> bytes:
    """The decoded payload, as get_payload(decode=True) gives it. Base64 is decoded
    straight from the parsed text: the stdlib copies it three times first (encoded,
    split into lines, joined), which for a 28 MB attachment was 100 MB."""
    payload = part._payload  # as parsed: get_payload() would decode 8-bit text again
    if isinstance(payload, str) and _cte(part) == "base64" and payload.isascii():
        try:
            return binascii.a2b_base64(payload)
        except binascii.Error:
            pass  # bad padding or length: the stdlib's repairs below
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    return b""


def _payload_head(part: Message, limit: int) -> tuple[bytes, bool]:
    """At most about `limit` decoded bytes of a leaf part, and whether there was more."""
    cte = _cte(part)
    if cte in ("base64", "quoted-printable"):
        try:
            payload = part.get_payload()
        except Exception:
            payload = ""
        if not isinstance(payload, str):
            return b"", False
        if cte == "base64":
            window = limit * 4 // 3 + limit // 30 + 64
            chunk = re.sub(r"[^A-Za-z0-9+/]", "", payload[:window])
            chunk = chunk[: len(chunk) // 4 * 4]
            try:
                data = binascii.a2b_base64(chunk)
            except (binascii.Error, ValueError):
                data = b""
            return data, len(payload) > window
        window = limit * 3 + 64
        data = quopri.decodestring(payload[:window].encode("utf-8", "surrogateescape"))
        return data, len(payload) > window
    payload = part._payload
    if isinstance(payload, str) and len(payload) > limit and cte not in _UU:
        try:  # a character per byte, as get_payload(decode=True) encodes it
            return payload[:limit].encode("ascii", "surrogateescape"), True
        except UnicodeEncodeError:
            pass
    data = _payload_bytes(part)
    return data[:limit], len(data) > limit


_UU = ("x-uuencode", "uuencode", "uue", "x-uue")


_ALIASES = {
    "us-ascii": "utf-8", "ascii": "utf-8", "iso-8859-1": "cp1252", "latin1": "cp1252",
    "latin-1": "cp1252", "iso8859-1": "cp1252", "x-sjis": "shift_jis", "windows-31j": "cp932",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "ks_c_5601-1987": "euc_kr",
    "iso-8859-8-i": "iso-8859-8", "x-mac-roman": "mac_roman", "utf8": "utf-8",
    "x-unknown": "", "unknown-8bit": "", "unknown": "",
}  # fmt: skip


def _codec(charset: str) -> str | None:
    """A text codec for a declared charset, None when unknown."""
    name = (charset or "").strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _decode_header_compat(raw: str) -> str:
    try:
        pieces = decode_header(raw)
    except Exception:
        return raw
    out = []
    for chunk, charset in pieces:
        if isinstance(chunk, bytes):
            codec = _codec(charset) if charset else "utf-8"
            try:
                out.append(chunk.decode(codec or "utf-8", "replace"))
            except Exception:
                out.append(chunk.decode("utf-8", "replace"))
        else:
            out.append(chunk)
    return "".join(out)


# --- text helpers ---------------------------------------------------------------------


def _clean(text: str) -> str:
    """Valid Unicode without NULs or control characters (lone surrogates from escaped
    bytes are decoded as UTF-8 with replacement)."""
    if not isinstance(text, str):
        text = str(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = _C1_RX.sub(_c1, text)  # latin-1 labels on windows-1252 text
    return _CONTROL_RX.sub("", text)


def _c1(match: re.Match) -> str:
    return bytes([ord(match.group(0))]).decode("cp1252", "ignore")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _short(text: str) -> str:
    return _one_line(_clean(text))[:60]


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _ids(value: str) -> list[str]:
    found = _ID_RX.findall(value)
    if not found and value.strip():
        found = [t.strip("<>") for t in value.split() if t.strip("<>")]
    return [f for f in found if f]


def _strip_prefixes(subject: str) -> tuple[str, bool]:
    """The subject without "Re:"/"Fwd:"... prefixes, and whether one was a forward."""
    forwarded = False
    for _ in range(30):
        match = _PREFIX_RX.match(subject)
        if not match:
            break
        forwarded = forwarded or match.group(1).lower() in _FORWARD_PREFIXES
        subject = subject[match.end() :]
    return subject.strip(), forwarded


class _HTMLText(HTMLParser):
    BLOCK = {
        "p", "div", "li", "tr", "table", "ul", "ol", "section", "article", "header", "footer",
        "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr", "dd", "dt", "dl", "address", "center",
    }  # fmt: skip
    PARAGRAPH = {"p", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "hr"}
    SKIP = {"script", "style", "head", "title", "template", "noscript", "xml"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.quote = 0
        self.pre = 0
        self.line_start = True

    def newline(self, blank=False):
        self.out.append("\n\n" if blank else "\n")
        self.line_start = True

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
            return
        if tag == "br":
            self.newline()
            return
        marks = " ".join(str(v) for k, v in attrs if k in ("class", "id") and v).lower()
        if "signature" in marks:
            self.newline()
            self.out.append("-- ")
            self.newline()
        if tag == "blockquote":
            self.newline()
            self.quote += 1
        elif tag in self.BLOCK:
            self.newline(tag in self.PARAGRAPH)
        if tag == "pre":
            self.pre += 1
        if tag in ("td", "th"):
            self.out.append(" ")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self.newline()
        elif tag in self.BLOCK:
            self.newline(tag in self.PARAGRAPH)
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data):
        if self.skip:
            return
        lines = data.split("\n") if self.pre else [re.sub(r"\s+", " ", data)]
        for index, line in enumerate(lines):
            if index:
                self.newline()
            if self.line_start:
                line = line.lstrip()
                if not line:
                    continue
                if self.quote:
                    self.out.append("> " * self.quote)
            self.out.append(line)
            self.line_start = False


def _html_to_text(html: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.out)
    except Exception:
        text = re.sub(r"<br\s*/?>|</p\s*>", "\n", html, flags=re.I)
        text = re.sub(r"<[^>]{0,2000}>", "", text)
    return _normalise("\n".join(line.strip() for line in text.split("\n")))


def _split_history(text: str, subject_forward: bool) -> tuple[str, str]:
    """(the new text without quotes and signature, the forwarded text or "")."""
    lines = text.split("\n")
    new: list[str] = []
    forwarded = ""
    for index, line in enumerate(lines):
        stripped = line.strip().strip("*").strip()
        if _FORWARD_MARK_RX.match(stripped):
            forwarded = _forwarded(lines[index + 1 :])
            break
        if _ORIGINAL_RX.match(stripped) or (
            _UNDERSCORES_RX.match(stripped) and _header_block(lines, index + 1)
        ):
            if subject_forward:
                forwarded = _forwarded(lines[index + 1 :])
            break
        if stripped and _header_block(lines, index):
            if subject_forward:
                forwarded = _forwarded(lines[index:])
            break
        if _wrote(lines, index):
            break
        if stripped.startswith(">") or line.lstrip().startswith(">"):
            continue
        new.append(line)
    return _normalise("\n".join(_strip_signature(new))), forwarded


def _header_block(lines: list[str], start: int) -> bool:
    """A quoted header block: "From: ..." with "Sent:"/"Date:" within the next lines."""
    limit = start + 3
    while start < min(len(lines), limit) and not lines[start].strip():
        start += 1
    if start >= len(lines) or not _HEADER_FROM_RX.match(lines[start].strip().lstrip(">").strip()):
        return False
    for line in lines[start + 1 : start + 6]:
        if _HEADER_SENT_RX.match(line.strip().lstrip(">").strip()):
            return True
    return False


def _wrote(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    if len(line) > 400 or not line:
        return False
    if _WROTE_RX.match(line):
        return True
    if index + 1 < len(lines) and re.match(r"(?i)^(?:on|am|le|el|il|op)\b", line):
        joined = f"{line} {lines[index + 1].strip()}"
        return len(joined) <= 500 and bool(_WROTE_RX.match(joined))
    return False


def _forwarded(lines: list[str]) -> str:
    """The forwarded text after its header block (its Subject line kept), cleaned of its
    own quoted history and signature; a forward inside it is read as well."""
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    kept: list[str] = []
    in_headers = False
    while index < len(lines):
        line = lines[index].strip().lstrip(">").strip()
        if _HEADER_LINE_RX.match(line.strip("*")):
            in_headers = True
            if _SUBJECT_LINE_RX.match(line.strip("*")):
                kept.append(line.replace("*", ""))
            index += 1
        elif in_headers and lines[index][:1] in (" ", "\t") and line:
            index += 1  # a folded header line
        else:
            break
    rest = [line[1:].lstrip() if line.startswith(">") else line for line in lines[index:]]
    new_text, nested = _split_history("\n".join(rest), False)
    return _normalise("\n".join([*kept, "", new_text, "", nested]))


def _strip_signature(lines: list[str]) -> list[str]:
    for index, line in enumerate(lines):
        if line.rstrip() in ("--", "—") or _MOBILE_SIGNATURE_RX.match(line.strip()):
            lines = lines[:index]
            break
    tail = 0
    for index in range(len(lines) - 1, -1, -1):
        stripped = lines[index].strip()
        if not stripped:
            continue
        sign_off = _SIGN_OFF_RX.match(stripped)
        if sign_off:  # followed by a name: "Thanks, Jane" or "Best regards,\nJane Doe"
            after = "\n".join(lines[index + 1 :])
            named = tail > 0 or sign_off.group("name")
            if named and not _NUMBER_RX.search(after):
                return lines[:index]
            break
        tail += 1
        if tail > 4 or len(stripped) > 60:
            break
    return lines


one_line = _one_line
clean = _clean
short = _short
EMAIL_RX = _EMAIL_RX
NAME_WORDS = _NAME_WORDS
