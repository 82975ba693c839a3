"""Read a refund mail: `parse(raw: bytes) -> ParsedMail`, from the generic read of
inbox.parse (decoding, threading, auto-replies, quoted history, signature, attachments).

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

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from inbox.parse import EMAIL_RX as _EMAIL_RX
from inbox.parse import MAX_ATTACHMENTS, MAX_SUBJECT, MAX_TEXT, MailMessage, read
from inbox.parse import NAME_WORDS as _NAME_WORDS
from inbox.parse import one_line as _one_line
from inbox.parse import short as _short
from refunds.policy.types import REASON_LABELS

from .types import ParsedMail

MAX_FIELD_TEXT = 200_000  # characters of the new text searched for fields
MAX_REASON_TEXT = 1_000

__all__ = ["MAX_ATTACHMENTS", "MAX_SUBJECT", "MAX_TEXT", "parse"]


def parse(raw: bytes) -> ParsedMail:
    """What a refund mail says, as far as it can be read; never raises."""
    return parse_message(read(raw))


def parse_message(message: MailMessage) -> ParsedMail:
    """The refund fields of a mail inbox.parse has read; never raises."""
    if message.failure == "not bytes":
        return ParsedMail(problems=message.problems)
    if message.failure:
        return ParsedMail(problems=(*message.problems, NO_ORDER))
    try:
        return _refund_fields(message)
    except Exception as exc:  # the generic read stands; the fields are missing
        return _generic(message, (f"The mail could not be read ({type(exc).__name__}).", NO_ORDER))


def _generic(message: MailMessage, problems) -> ParsedMail:
    return ParsedMail(
        message_id=message.message_id,
        references=message.references,
        sender_email=message.sender_email,
        sender_name=message.display_name[:200],
        subject=message.subject,
        is_auto=message.is_auto,
        auto_reason=message.auto_reason,
        body=message.body,
        attachments=message.attachments,
        problems=tuple(problems),
    )


def _refund_fields(message: MailMessage) -> ParsedMail:
    problems = list(message.problems)

    def note(problem: str) -> None:
        if problem not in problems:
            problems.append(problem)

    body, is_auto = message.body, message.is_auto
    window = body[:MAX_FIELD_TEXT]
    fields = _Fields(window)
    order_number = _find_number(_ORDER_RX, "ORD", message.subject_core) or _find_number(
        _ORDER_RX, "ORD", window
    )
    others = {
        n for n in _all_numbers(_ORDER_RX, "ORD", window) if order_number and n != order_number
    }
    if others:
        note(
            f"Other order numbers are mentioned too ({', '.join(sorted(others)[:5])}); "
            f"{order_number} is used."
        )
    request_number = _find_number(_REQUEST_RX, "RR", message.subject_full) or _find_number(
        _REQUEST_RX, "RR", window
    )
    names = fields.names()
    payment_date, date_problem = fields.payment_date()
    amount, currency, amount_problem = fields.money()
    method = fields.method()
    reason_code, reason_text, reason_problem = fields.reason()
    display_name = message.display_name
    sender_name = names[0] if names else display_name

    if not is_auto and not request_number:
        if not order_number:
            note(NO_ORDER)
        if not names and not display_name:
            note("No name given.")
        if date_problem:
            note(date_problem)
        if amount_problem:
            note(amount_problem)
        if not method:
            note("No payment method found.")
        if reason_problem:
            note(reason_problem)
    if not body.strip() and not message.attachments and not is_auto:
        note("The body is empty.")
    return ParsedMail(
        message_id=message.message_id,
        references=message.references,
        sender_email=message.sender_email,
        sender_name=sender_name[:200],
        subject=message.subject,
        is_auto=is_auto,
        auto_reason=message.auto_reason,
        is_refund_subject=bool(_REFUND_SUBJECT_RX.search(message.subject_core)),
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
        attachments=message.attachments,
        problems=tuple(problems),
    )


NO_ORDER = "No order number in the subject or the body."

# --- patterns -------------------------------------------------------------------------

_DASH = r"[-\u2010\u2011\u2012\u2013\u2014_]"
# Six digits or more: numbers are the id padded to six (ORD-2026-1000000 after a million).
_ORDER_RX = re.compile(
    rf"(?<![A-Za-z0-9])ORD\s*{_DASH}\s*(\d{{4}})\s*{_DASH}\s*(\d{{6,}})(?!\d)", re.I
)
_REQUEST_RX = re.compile(
    rf"(?<![A-Za-z0-9])RR\s*{_DASH}\s*(\d{{4}})\s*{_DASH}\s*(\d{{6,}})(?!\d)", re.I
)
_REFUND_SUBJECT_RX = re.compile(r"\brefund[\s_-]*request\b", re.I)
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


def _find_number(rx: re.Pattern, prefix: str, text: str) -> str | None:
    match = rx.search(text)
    return f"{prefix}-{match.group(1)}-{match.group(2)}" if match else None


def _all_numbers(rx: re.Pattern, prefix: str, text: str) -> set[str]:
    return {f"{prefix}-{m.group(1)}-{m.group(2)}" for m in rx.finditer(text)}


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


# --- which purchases a mail names -----------------------------------------------------

_ITEM_STOP = {"the", "a", "an", "of", "for", "and", "plan", "edition", "users", "user", "seat"}


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w]+", " ", text.lower()).split()


def named_items(text: str, candidates: dict) -> list:
    """The candidates (key -> names of a purchase: its description, its product's name)
    that the text names, for a mail about some purchases of a multi-item order. A name
    is named when its words appear in the text in order and side by side; a name of one
    word counts only when no other candidate shares it. Empty when none or all are named:
    the mail is then about the whole order."""
    words = _words(text[:MAX_FIELD_TEXT])
    joined = f" {' '.join(words)} "
    found = []
    counts: dict[str, int] = {}
    for names in candidates.values():
        for word in {w for name in names for w in _words(name) if w not in _ITEM_STOP}:
            counts[word] = counts.get(word, 0) + 1
    for key, names in candidates.items():
        for name in names:
            significant = [w for w in _words(name) if w not in _ITEM_STOP]
            if not significant:
                continue
            phrase = f" {' '.join(_words(name))} "
            if len(_words(name)) >= 2 and phrase in joined:
                found.append(key)
                break
            core = f" {' '.join(significant)} "
            if (len(significant) >= 2 and core in joined) or (
                len(significant) == 1 and counts[significant[0]] == 1 and core in joined
            ):
                found.append(key)
                break
    return [] if len(found) == len(candidates) else found
