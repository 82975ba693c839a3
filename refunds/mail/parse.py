"""Read a refund mail: `parse(raw: bytes) -> ParsedMail`.

Pure (stdlib `email` only: no Django, no ORM, no clock) and it never raises: whatever
the bytes, the answer is a ParsedMail whose `problems` say in plain sentences what was
missing or odd. The work is bounded: at most MAX_TEXT (1 MB) of text parts is decoded
(base64 and quoted-printable are decoded only that far), the first MAX_FIELD_TEXT
characters of the new text are searched for fields; attachments are kept as bytes (at
most MAX_ATTACHMENTS). A header that email.policy.default cannot read is decoded the
compat32 way; a mail it cannot read at all is read again with compat32.

Choices (the refund policy §5 asks for "Refund request — Order #...", a name with the
account email or order number, the payment date, amount and method, and the reason):

- Subject: "Re:", "Fwd:", "AW:", "WG:", "SV:"... prefixes (repeated, any case) are
  skipped; "refund request" anywhere in the rest makes `is_refund_subject`. Order and
  request numbers are found in any case and with spaces around the dashes
  ("ord - 2026 - 000123") and normalised to ORD-2026-000123 / RR-2026-000123; the
  subject wins over the body.
- New text: the body without quoted history ("On ... wrote:", "> " lines,
  "-----Original Message-----", Outlook "From: ... Sent: ..." blocks) and without the
  signature (a "-- " line, "Sent from my iPhone" and the like, or a sign-off such as
  "Thanks," / "Best regards," followed by a name: on its line ("Thanks, Jane") or in
  at most four short lines to the end, unless those lines hold an order or request
  number). A forwarded message (a "Forwarded message" marker, a "Fwd:"-style subject
  over a quoted block, or an attached message/rfc822) is read too: it is what the
  sender sends us; `body` is the new text followed by the forwarded text.
- Dates: the date near "paid", "payment", "charged", "purchased"... wins; an unmarked
  date is used only when it is the only one. ISO (2026-03-03) first; "3 March 2026",
  "March 3, 2026"; numeric dates with dots are day-first (03.04.2026 = 3 April); with
  slashes or dashes the unambiguous reading is taken (13/03/2026, 03/13/2026) and an
  ambiguous one (03/04/2026) gives no date and a problem. A date without a year gives
  no date and a problem: nothing is inferred (no clock).
- Money: "$" is USD ("US$" too; "C$"/"CA$" CAD, "A$"/"AU$" AUD), "€" EUR, "£" GBP,
  "¥"/"円" JPY, "₹" INR; ISO codes before or after the number (upper case, or lower
  case for usd/eur/gbp/cad/aud/chf); "dollars"/"euros"/"pounds". The amount near
  "paid"/"amount"/"charged"... wins, else the first one.
  "49,00" is 49.00 and "1.234,56" is 1234.56 (a single separator followed by exactly
  three digits groups thousands). An amount labelled "amount:"/"total:" without a
  currency is kept with currency None and a problem.
- Method: "Visa", "Mastercard", "Amex", "Discover", "PayPal", "Apple Pay",
  "Google Pay", "bank transfer" (wire, SEPA, ACH); "card" when no brand is named. The
  earliest named in the text wins.
- Names: "Name: ...", "Full name: ...", "Cardholder: ...", "My name is ...",
  "This is Jane Doe from ..."; `sender_name` is the first of them, else the From
  display name (which never goes into `names`).
- Reason: the text after "Reason:" when given, else every sentence that holds reason
  wording; a code only when exactly one code's wording is found.
- Field problems ("No payment amount found.") are only noted for a mail that looks
  like a new request: not an automatic mail and without a request number.
"""

from __future__ import annotations

import binascii
import codecs
import quopri
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from email import policy as email_policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser

from refunds.policy.types import REASON_LABELS

from .types import Attachment, ParsedMail

MAX_SUBJECT = 500
MAX_TEXT = 1_000_000  # bytes of text decoded, per mail
MAX_FIELD_TEXT = 200_000  # characters of the new text searched for fields
MAX_ATTACHMENTS = 25
MAX_HEADER = 20_000  # characters of a header value decoded
MAX_DEPTH = 20  # MIME nesting
MAX_PARTS = 500
MAX_FORWARDS = 3  # forwarded messages inside forwarded messages
MAX_REFERENCES = 100
MAX_REASON_TEXT = 1_000

__all__ = ["MAX_ATTACHMENTS", "MAX_SUBJECT", "MAX_TEXT", "parse"]


def parse(raw: bytes) -> ParsedMail:
    """What a mail says, as far as it can be read; never raises."""
    try:
        data = _as_bytes(raw)
    except Exception:
        return ParsedMail(problems=("The input is not bytes.",))
    failure = None
    for policy in (email_policy.default, email_policy.compat32):
        try:
            return _Reader(data, policy).read()
        except Exception as exc:  # the next policy, then a bare answer
            failure = failure or exc
    return ParsedMail(
        problems=(f"The mail could not be read ({type(failure).__name__}).", NO_ORDER)
    )


def _as_bytes(raw) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return bytes(raw)


NO_ORDER = "No order number in the subject or the body."

# --- patterns -------------------------------------------------------------------------

_DASH = r"[-\u2010\u2011\u2012\u2013\u2014_]"
_ORDER_RX = re.compile(
    rf"(?<![A-Za-z0-9])ORD\s*{_DASH}\s*(\d{{4}})\s*{_DASH}\s*(\d{{6}})(?!\d)", re.I
)
_REQUEST_RX = re.compile(
    rf"(?<![A-Za-z0-9])RR\s*{_DASH}\s*(\d{{4}})\s*{_DASH}\s*(\d{{6}})(?!\d)", re.I
)
_PREFIX_RX = re.compile(
    r"^[ \t]*(?:\[[^\]\n]{1,40}\][ \t]*)?(re|fwd|fw|aw|wg|sv|vs|antw|tr|rv|enc|wtr)[ \t]*"
    r"(?:(?:\[\d{1,4}\]|\(\d{1,4}\))[ \t]*)?[:\uff1a][ \t]*",
    re.I,
)
_FORWARD_PREFIXES = {"fwd", "fw", "wg", "tr", "rv", "enc", "wtr"}
_REFUND_SUBJECT_RX = re.compile(r"\brefund[\s_-]*request\b", re.I)
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
_BULLET_RX = re.compile(r"^[ \t]*[-*\u2022][ \t]")
_LABEL_UNIT_RX = re.compile(
    r"^[ \t]*(?:[-*•>][ \t]*)?[A-Za-zÀ-ÿ][\w /'\u2019()-]{0,40}[ \t]*[:=][ \t]*\S"
)


def _reason_rx(*parts: str) -> re.Pattern:
    return re.compile("|".join(parts), re.I)


_NOT = r"(?:\bnot|n[\u2019']t|\bnever)"
_REASON_RXS = {
    "duplicate_charge": _reason_rx(
        r"\b(?:charged|billed|paid|debited|taken)\s+(?:me\s+|us\s+|it\s+)?(?:twice|two\s+times|double)\b",
        r"\bdouble[\s-]*(?:charged?|billed|billing|payment)\b",
        r"\bduplicated?\b",
        r"\btwo\s+(?:identical\s+|separate\s+)?(?:charges|payments)\b",
    ),
    "billing_error": _reason_rx(
        r"\b(?:billed|charged)\s+(?:me\s+|us\s+)?(?:in\s+error|by\s+mistake|incorrectly|wrongly|erroneously)\b",
        r"\bbilling\s+(?:error|mistake)\b",
        r"\bwrong\s+(?:amount|price|plan|currency)\b",
        r"\bincorrect\s+(?:amount|charge|price|invoice)\b",
        r"\bover[\s-]?charged?\b",
        rf"\bshould{_NOT}\s+have\s+been\s+(?:charged|billed)\b",
        r"\bshould\s+not\s+have\s+been\s+(?:charged|billed)\b",
        r"\b(?:charged|billed)\s+(?:me\s+|us\s+)?after\s+(?:i\s+|we\s+)?(?:had\s+)?cancel+(?:ed|ing|ation)?\b",
        r"\bunauthori[sz]ed\s+(?:charge|payment|transaction)\b",
    ),
    "not_as_advertised": _reason_rx(
        rf"(?:does|did|do){_NOT}\s+work\s+as\s+(?:advertised|described|promised)\b",
        r"\bnot\s+(?:as|what\s+was|what\s+you)\s+(?:advertised|described|promised)\b",
        r"\bmisleading\b",
        r"\bfalse\s+advertising\b",
    ),
    "unresolved_bug": _reason_rx(
        rf"\bbugs?\b[^.!?]{{0,80}}?{_NOT}\s+(?:been\s+|yet\s+|ever\s+)?(?:fixed|resolved|solved|addressed)\b",
        r"\bunresolved\s+(?:bug|issue|defect)s?\b",
        r"\bbugs?\s+(?:is\s+|was\s+|are\s+)?still\s+(?:there|open|unfixed|present|not\s+fixed)\b",
    ),
    "outage": _reason_rx(
        r"\boutages?\b",
        r"\bdowntime\b",
        r"\b(?:was|were|is|are|been|went|being|be)\s+(?:completely\s+|totally\s+|still\s+)?down\b",
        r"\b(?:service|platform|site|app|server)\s+(?:was\s+|is\s+|has\s+been\s+)?(?:unavailable|offline|unreachable)\b",
    ),
    "not_delivered": _reason_rx(
        r"\bnever\s+(?:received|got|arrived|delivered|came)\b",
        rf"{_NOT}\s+(?:yet\s+)?(?:been\s+)?(?:received|delivered)\b",
        rf"\bdid{_NOT}\s+(?:receive|get)\b",
        r"\bdid\s+not\s+(?:receive|get)\b",
        rf"\bha(?:ve|s){_NOT}\s+(?:yet\s+)?(?:received|got(?:ten)?)\b",
        r"\bha(?:ve|s)\s+not\s+(?:yet\s+)?(?:received|got(?:ten)?)\b",
    ),
    "defective": _reason_rx(
        r"\bdefective\b",
        r"\bbroken\s+(?:on|upon)\s+(?:delivery|arrival)\b",
        r"\bdead\s+on\s+arrival\b",
        r"\bfaulty\b",
        rf"(?:never|did{_NOT}|does{_NOT}|did\s+not|does\s+not)\s+work(?:ed)?\s+(?:at\s+all|from\s+(?:the\s+)?(?:start|beginning|day\s+one)|out\s+of\s+the\s+box)\b",
        r"\bcorrupt(?:ed)?\s+(?:download|file|installer|license|key)\b",
    ),
    "no_longer_needed": _reason_rx(
        r"\bno\s+longer\s+(?:need|needed|require|required|use|using|want)\b",
        rf"(?:do|did|does){_NOT}\s+(?:really\s+|actually\s+)?need\b",
        r"\b(?:do|did|does)\s+not\s+(?:really\s+|actually\s+)?need\b",
        r"\bdont\s+need\b",
        r"\bnot\s+a\s+(?:good\s+)?fit\b",
        r"\bnot\s+needed\s+anymore\b",
        r"\bchanged\s+(?:my|our)\s+minds?\b",
        r"\bstopped\s+using\b",
        r"\bnot\s+using\s+it\s+any\s?more\b",
    ),
    "force_majeure": _reason_rx(r"\bforce\s+majeure\b"),
    "customer_infrastructure": _reason_rx(
        r"\b(?:my|our)\s+own\s+(?:server|servers|infrastructure|hosting|network|firewall)\b"
    ),
}
_REASON_LABEL_RX = re.compile(
    r"^[ \t]*(?:[-*•][ \t]*)?(?:reason(?:\s+for\s+(?:the\s+|my\s+|this\s+)?refund(?:\s+request)?)?"
    r"|refund\s+reason|why)[ \t]*[:=][ \t]*(?P<value>.*)$",
    re.I,
)

# Names.
_NAME_LABEL_RX = re.compile(
    r"^[ \t]*(?:[-*•][ \t]*)?(?:(?:full|customer|your|my|account[ \t]+holder(?:'s)?|card[ \t]*holder(?:'s)?)[ \t]+)?"
    r"name[ \t]*[:=][ \t]*(?P<value>[^\n]{1,120})$"
    r"|^[ \t]*(?:[-*•][ \t]*)?(?:account[ \t]+holder|card[ \t]*holder)[ \t]*[:=][ \t]*(?P<value2>[^\n]{1,120})$",
    re.I | re.M,
)
_MY_NAME_RX = re.compile(r"\bmy\s+name\s+is\s+(?P<value>[^\n.,;:!?()<>]{1,80})", re.I)
_THIS_IS_RX = re.compile(
    rf"\b(?:[Tt]his is|I am|I'm)\s+(?P<value>{_NAME_WORDS})\s+(?:from|at|here)\b"
)
_NAME_STOP = {
    "and", "from", "at", "with", "i", "i'm", "im", "my", "the", "here", "account", "order",
    "email", "e-mail", "of", "for", "in", "on", "to", "who", "but", "please", "writing",
}  # fmt: skip

# Dates.
_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11,
    "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
_MONTH = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b"
_DATE_RX = re.compile(
    r"(?<![\d/.-])(?P<iy>(?:19|20)\d\d)[-/.](?P<im>\d{1,2})[-/.](?P<id>\d{1,2})(?!\d)"
    rf"|(?<![\w/.-])(?P<dd>\d{{1,2}})(?:st|nd|rd|th)?\.?\s*(?:of\s+)?(?P<dmon>{_MONTH})\.?"
    r"(?:,?\s+(?P<dy>(?:19|20)\d\d)(?!\d))?"
    rf"|(?<![\w])(?P<mmon>{_MONTH})\.?\s+(?P<md>\d{{1,2}})(?:st|nd|rd|th)?(?![\d:])"
    r"(?:,?\s+(?P<my>(?:19|20)\d\d)(?!\d))?"
    r"|(?<![\w/.-])(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<y>(?:19|20)\d\d|\d\d)(?![\d]|[/.-]\d)",
    re.I,
)
_PAYMENT_WORDS_RX = re.compile(
    r"\b(?:paid|pay|payment|charged?|charge|purchased?|bought|billed|billing|ordered|order"
    r"|subscribed|renewed|renewal|transaction|invoiced?|debited)\b",
    re.I,
)
_RELATIVE_DATE_RX = re.compile(
    r"\b(?:paid|charged|purchased|bought|billed)\b[^.\n]{0,20}\b(?:yesterday|today|last\s+(?:week|month|monday|tuesday|wednesday|thursday|friday|saturday|sunday)|(?:a|one|two|three|\d{1,2})\s+(?:days?|weeks?)\s+ago)\b",
    re.I,
)

# Money.
_SYMBOLS = {
    "us$": "USD", "usd$": "USD", "c$": "CAD", "ca$": "CAD", "cad$": "CAD", "a$": "AUD",
    "au$": "AUD", "aud$": "AUD", "nz$": "NZD", "r$": "BRL", "$": "USD", "€": "EUR",
    "£": "GBP", "¥": "JPY", "₹": "INR", "円": "JPY",
}  # fmt: skip
_CODES = [
    "USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "JPY", "INR", "BRL", "MXN", "SEK", "NOK",
    "DKK", "PLN", "CZK", "HUF", "SGD", "HKD", "CNY", "ZAR", "AED", "RON",
]  # fmt: skip
_WORDS = {
    "dollar": "USD",
    "dollars": "USD",
    "euro": "EUR",
    "euros": "EUR",
    "pound": "GBP",
    "pounds": "GBP",
}
_SYM = "|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True))
_CODE = "(?-i:" + "|".join(_CODES) + ")|usd|eur|gbp|cad|aud|chf"  # lower case for the common ones
_NUM = r"\d{1,3}(?:[,.' \u00a0]\d{3}){1,4}(?:[.,]\d{1,2})?(?!\d)|\d{1,9}(?:[.,]\d{1,2})?(?!\d)"
_MONEY_RX = re.compile(
    rf"(?<![\w$])(?P<s1>{_SYM})\s?(?P<n1>{_NUM})"
    rf"|(?<![A-Za-z])(?P<c1>{_CODE})\s?(?P<n2>{_NUM})"
    rf"|(?<![\w.,])(?P<n3>{_NUM})\s?(?:(?P<s2>€|£|¥|₹|円|\$)|(?P<c2>{_CODE}|dollars?|euros?|pounds?)(?![A-Za-z]))",
    re.I,
)
_AMOUNT_LABEL_RX = re.compile(
    rf"\b(?:amount(?:\s+paid|\s+charged)?|total|price|cost|sum)\s*(?:was|is|of|:|=)?\s*(?P<n>{_NUM})(?!\s*[%/])",
    re.I,
)
_MONEY_CONTEXT_RX = re.compile(
    r"\b(?:paid|pay|payment|charged?|amount|total|price|cost|billed|refund|debited|invoice)\b", re.I
)
_CURRENCY_LABEL_RX = re.compile(rf"\bcurrency\s*[:=]\s*(?P<c>{_CODE})\b", re.I)

# Payment methods: the earliest brand wins; "card" only when no brand is named.
_METHOD_RXS = (
    ("Visa", re.compile(r"\bvisa\b", re.I)),
    ("Mastercard", re.compile(r"\bmaster\s?card\b", re.I)),
    ("Amex", re.compile(r"\bamex\b|\bamerican\s+express\b", re.I)),
    ("Discover", re.compile(r"\bdiscover\s+card\b", re.I)),
    ("PayPal", re.compile(r"\bpay\s?pal\b", re.I)),
    ("Apple Pay", re.compile(r"\bapple\s+pay\b", re.I)),
    ("Google Pay", re.compile(r"\bgoogle\s+pay\b", re.I)),
    (
        "bank transfer",
        re.compile(r"\bbank\s+(?:transfer|wire)\b|\bwire(?:\s+transfer)?\b|\bsepa\b|\bACH\b", re.I),
    ),
)
_CARD_RX = re.compile(r"\b(?:(?:credit|debit)\s+)?card\b", re.I)

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
        self.msg = BytesParser(policy=policy).parsebytes(raw)
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
        if len(raw) <= MAX_HEADER and self.policy is email_policy.default:
            try:
                value = str(msg.get(name, ""))
            except Exception:
                self.note(f"The {name} header is malformed.")
        if value is None:
            value = _decode_header_compat(raw[:MAX_HEADER])
        return _one_line(_clean(value))

    def read(self) -> ParsedMail:
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
        is_auto, auto_reason = self.auto(sender_email, display_name, subject_full)

        text, forwards = self.contents(msg, depth=0, read_forwards=not is_auto)
        attachments = self.attachments
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

        window = body[:MAX_FIELD_TEXT]
        fields = _Fields(window)
        order_number = _find_number(_ORDER_RX, "ORD", core) or _find_number(
            _ORDER_RX, "ORD", window
        )
        others = {
            n for n in _all_numbers(_ORDER_RX, "ORD", window) if order_number and n != order_number
        }
        if others:
            self.note(
                f"Other order numbers are mentioned too ({', '.join(sorted(others)[:5])}); "
                f"{order_number} is used."
            )
        request_number = _find_number(_REQUEST_RX, "RR", subject_full) or _find_number(
            _REQUEST_RX, "RR", window
        )
        names = fields.names()
        payment_date, date_problem = fields.payment_date()
        amount, currency, amount_problem = fields.money()
        method = fields.method()
        reason_code, reason_text, reason_problem = fields.reason()
        sender_name = names[0] if names else display_name

        if not is_auto and not request_number:
            if not order_number:
                self.note(NO_ORDER)
            if not names and not display_name:
                self.note("No name given.")
            if date_problem:
                self.note(date_problem)
            if amount_problem:
                self.note(amount_problem)
            if not method:
                self.note("No payment method found.")
            if reason_problem:
                self.note(reason_problem)
        if not body.strip() and not attachments and not is_auto:
            self.note("The body is empty.")
        return ParsedMail(
            message_id=self.message_id(),
            references=self.references(),
            sender_email=sender_email,
            sender_name=sender_name[:200],
            subject=subject,
            is_auto=is_auto,
            auto_reason=auto_reason,
            is_refund_subject=bool(_REFUND_SUBJECT_RX.search(core)),
            request_number=request_number,
            order_number=order_number,
            names=names,
            emails=fields.emails(),
            payment_date=payment_date,
            amount=amount,
            currency=currency,
            method=method,
            reason_code=reason_code,
            reason_text=reason_text,
            body=body,
            attachments=tuple(attachments),
            problems=tuple(self.problems),
        )

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
        if self.policy is email_policy.default and len(raw) <= MAX_HEADER:
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
    data = _payload_bytes(part)
    return data[:limit], len(data) > limit


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


def _find_number(rx: re.Pattern, prefix: str, text: str) -> str | None:
    match = rx.search(text)
    return f"{prefix}-{match.group(1)}-{match.group(2)}" if match else None


def _all_numbers(rx: re.Pattern, prefix: str, text: str) -> set[str]:
    return {f"{prefix}-{m.group(1)}-{m.group(2)}" for m in rx.finditer(text)}


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
            if named and not (_ORDER_RX.search(after) or _REQUEST_RX.search(after)):
                return lines[:index]
            break
        tail += 1
        if tail > 4 or len(stripped) > 60:
            break
    return lines


# --- fields ---------------------------------------------------------------------------


class _Fields:
    """Fields read from the new text (and forwarded text) of a mail."""

    def __init__(self, text: str):
        self.text = text
        self.units = _units(text)

    def names(self) -> tuple[str, ...]:
        found: list[tuple[int, str]] = []
        for match in _NAME_LABEL_RX.finditer(self.text):
            found.append((match.start(), match.group("value") or match.group("value2") or ""))
        for rx in (_MY_NAME_RX, _THIS_IS_RX):
            for match in rx.finditer(self.text):
                found.append((match.start(), match.group("value")))
        names: list[str] = []
        for _, raw in sorted(found):
            name = _name(raw)
            if name and name.lower() not in (n.lower() for n in names):
                names.append(name)
        return tuple(names[:10])

    def emails(self) -> tuple[str, ...]:
        labelled, others = [], []
        for match in _EMAIL_RX.finditer(self.text):
            address = match.group(0).lower().strip(".'")
            line_start = self.text.rfind("\n", 0, match.start()) + 1
            before = self.text[max(line_start, match.start() - 60) : match.start()].lower()
            target = (
                labelled if re.search(r"account|login|log in|registered|sign", before) else others
            )
            if address not in labelled and address not in others:
                target.append(address)
        return tuple((labelled + others)[:20])

    def payment_date(self) -> tuple[date | None, str]:
        candidates = []
        for match in _DATE_RX.finditer(self.text):
            line_start = self.text.rfind("\n", 0, match.start()) + 1
            before = self.text[max(line_start, match.start() - 60) : match.start()]
            labelled = bool(_PAYMENT_WORDS_RX.search(before))
            candidates.append((labelled, match))
        chosen = next((m for labelled, m in candidates if labelled), None)
        if chosen is None:
            readings = {_date(m) for _, m in candidates}
            if len(readings) > 1:
                return None, "Several dates are mentioned and none is marked as the payment date."
            chosen = candidates[0][1] if candidates else None
        if chosen is None:
            relative = _RELATIVE_DATE_RX.search(self.text)
            if relative:
                return (
                    None,
                    f"The payment date is relative (“{_short(relative.group(0))}”): no date is inferred.",
                )
            return None, "No payment date found."
        value, problem = _date(chosen)
        return value, problem

    def money(self) -> tuple[Decimal | None, str | None, str]:
        best = None
        for match in _MONEY_RX.finditer(self.text):
            line_start = self.text.rfind("\n", 0, match.start()) + 1
            before = self.text[max(line_start, match.start() - 40) : match.start()]
            labelled = bool(_MONEY_CONTEXT_RX.search(before))
            if best is None or (labelled and not best[0]):
                best = (labelled, match)
            if labelled:
                break
        if best is not None:
            match = best[1]
            number = match.group("n1") or match.group("n2") or match.group("n3")
            symbol = match.group("s1") or match.group("s2")
            code = match.group("c1") or match.group("c2")
            currency = _SYMBOLS.get(symbol.lower()) if symbol else None
            if code:
                currency = _WORDS.get(code.lower(), code.upper())
            amount = _number(number)
            if amount is not None:
                return amount, currency, ""
        match = _AMOUNT_LABEL_RX.search(self.text)
        if match:
            amount = _number(match.group("n"))
            if amount is not None:
                label = _CURRENCY_LABEL_RX.search(self.text)
                if label:
                    return amount, label.group("c").upper(), ""
                return amount, None, f"The amount {amount} has no currency."
        return None, None, "No payment amount found."

    def method(self) -> str | None:
        best = None
        for method, rx in _METHOD_RXS:
            match = rx.search(self.text)
            if match and (best is None or match.start() < best[0]):
                best = (match.start(), method)
        if best:
            return best[1]
        return "card" if _CARD_RX.search(self.text) else None

    def reason(self) -> tuple[str | None, str, str]:
        """(code, the customer's words, a problem)."""
        labelled = self.reason_label()
        if labelled:
            codes = _codes(labelled)
            if not codes:
                codes = _codes(self.text)
            return _one_code(codes, labelled)
        sentences = [u for u in self.units if _codes(u)]
        codes = _codes(" \n".join(sentences))
        words = _one_line(" ".join(dict.fromkeys(sentences)))[:MAX_REASON_TEXT]
        if not sentences:
            return None, "", "No reason given."
        return _one_code(codes, words)

    def reason_label(self) -> str:
        lines = self.text.split("\n")
        for index, line in enumerate(lines):
            match = _REASON_LABEL_RX.match(line)
            if not match:
                continue
            value = match.group("value").strip()
            following = []
            for nxt in lines[index + 1 :]:
                if not nxt.strip():
                    if value or following:
                        break
                    continue
                if _LABEL_UNIT_RX.match(nxt):
                    break
                following.append(nxt.strip())
            return _one_line(" ".join([value, *following]))[:MAX_REASON_TEXT]
        return ""


def _units(text: str) -> list[str]:
    """Sentences, paragraph by paragraph, hard-wrapped lines joined; a "Label: value"
    line is a unit of its own unless it continues a sentence broken on the line before."""
    units: list[str] = []
    for paragraph in re.split(r"\n[ \t]*\n", text):
        blocks: list[list[str]] = []
        previous_label = False
        for line in paragraph.split("\n"):
            if not line.strip():
                continue
            label = bool(_LABEL_UNIT_RX.match(line))
            previous = blocks[-1][-1].rstrip() if blocks else ""
            new_block = (
                not blocks
                or bool(_BULLET_RX.match(line))
                or (label and (previous_label or previous.endswith((".", "!", "?", ":", ";"))))
                or (previous_label and len(previous) < 50)
            )
            if new_block:
                blocks.append([line])
            else:
                blocks[-1].append(line)
            previous_label = label if new_block else previous_label and label
        for block in blocks:
            joined = _one_line(" ".join(block))
            units.extend(s for s in re.split(r"(?<=[.!?])\s+", joined) if s)
    return units


def _codes(text: str) -> list[str]:
    return [code for code, rx in _REASON_RXS.items() if rx.search(text)]


def _one_code(codes: list[str], words: str) -> tuple[str | None, str, str]:
    if len(codes) == 1:
        return codes[0], words, ""
    if not codes:
        return None, words, "The reason does not match a reason code."
    labels = " or ".join(f"“{REASON_LABELS.get(c, c)}”" for c in codes)
    return None, words, f"The reason is unclear: it could be {labels}."


def _name(raw: str) -> str:
    raw = re.split(r"\s[-\u2013\u2014(|/]\s?|[,;<(|]|\s{2,}", raw.strip())[0]
    words = []
    for word in raw.split():
        if word.lower().strip(".") in _NAME_STOP or any(ch.isdigit() for ch in word) or "@" in word:
            break
        words.append(word)
        if len(words) == 5:
            break
    name = " ".join(words).strip(" .!?:'\"")
    return name[:80] if len(name) >= 2 else ""


def _date(match: re.Match) -> tuple[date | None, str]:
    written = _short(match.group(0))
    year = month = day = None
    if match.group("iy"):
        year, month, day = int(match.group("iy")), int(match.group("im")), int(match.group("id"))
    elif match.group("dmon"):
        day, month = int(match.group("dd")), _MONTHS[match.group("dmon").lower().rstrip(".")]
        year = int(match.group("dy")) if match.group("dy") else None
    elif match.group("mmon"):
        month, day = _MONTHS[match.group("mmon").lower().rstrip(".")], int(match.group("md"))
        year = int(match.group("my")) if match.group("my") else None
    else:
        first, second = int(match.group("a")), int(match.group("b"))
        year = int(match.group("y"))
        year = year + 2000 if year < 100 else year
        if match.group("sep") == "." or first > 12:
            day, month = first, second
        elif second > 12 or first == second:
            month, day = first, second
        else:
            return None, (
                f"The payment date “{written}” is ambiguous: {first} {_month_name(second)} "
                f"or {_month_name(first)} {second}."
            )
    if year is None:
        return None, f"The payment date “{written}” has no year."
    try:
        return date(year, month, day), ""
    except ValueError:
        return None, f"The payment date “{written}” is not a real date."


def _month_name(month: int) -> str:
    return date(2000, month, 1).strftime("%B") if 1 <= month <= 12 else str(month)


def _number(text: str) -> Decimal | None:
    text = re.sub(r"[\s'\u00a0]", "", text)
    if "," in text and "." in text:
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif "," in text or "." in text:
        sep = "," if "," in text else "."
        head, _, tail = text.rpartition(sep)
        thousands = len(tail) == 3 or text.count(sep) > 1
        text = text.replace(sep, "") if thousands else f"{head}.{tail}"
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and value >= 0 else None
