"""refunds.mail.parse: the corpus in eml/ against expected.yaml, the wording variants,
big and broken input, and hypothesis fuzzing (parse never raises)."""

import ast
import base64
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refunds.mail import parse as parse_module
from refunds.mail.parse import MAX_ATTACHMENTS, MAX_SUBJECT, MAX_TEXT, parse
from refunds.mail.types import ParsedMail
from refunds.policy.types import REASONS

HERE = Path(__file__).parent
EML = HERE / "eml"
EXPECTED = yaml.safe_load((HERE / "expected.yaml").read_text(encoding="utf-8"))
FILES = sorted(path.name for path in EML.glob("*.eml"))


def test_the_corpus_has_at_least_40_mails_each_with_its_expected_parse():
    assert len(FILES) >= 40
    assert sorted(EXPECTED) == FILES


@pytest.mark.parametrize("name", FILES)
def test_corpus_mail(name):
    parsed = parse((EML / name).read_bytes())
    check(parsed, EXPECTED[name])


def check(parsed: ParsedMail, expected: dict) -> None:
    got = parsed.as_dict()
    for key, want in expected.items():
        if key == "body_contains":
            for text in want:
                assert text in parsed.body, f"body lacks {text!r}: {parsed.body!r}"
        elif key == "body_excludes":
            for text in want:
                assert text not in parsed.body, f"body has {text!r}: {parsed.body!r}"
        elif key == "reason_text_contains":
            assert want in parsed.reason_text
        elif key == "problems_contain":
            for text in want:
                assert any(text in p for p in parsed.problems), (text, parsed.problems)
        elif key == "problems_exclude":
            for text in want:
                assert not any(text in p for p in parsed.problems), (text, parsed.problems)
        elif key == "attachment_count":
            assert len(parsed.attachments) == want
        elif key == "subject_length":
            assert len(parsed.subject) == want
        elif key == "attachments":
            assert len(got["attachments"]) == len(want), got["attachments"]
            for actual, wanted in zip(got["attachments"], want, strict=True):
                assert {k: actual[k] for k in wanted} == wanted
        elif key == "amount":
            assert parsed.amount == (Decimal(str(want)) if want is not None else None), key
        elif key == "payment_date":
            assert got["payment_date"] == (str(want) if want is not None else None)
        else:
            assert got[key] == want, f"{key}: {got[key]!r} != {want!r}"


# --- wording variants -----------------------------------------------------------------


def mail(subject: str = "Hello", body: str = "", **headers: str) -> bytes:
    lines = ["From: Jane Doe <jane@example.com>", f"Subject: {subject}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    lines += ["Content-Type: text/plain; charset=utf-8", "", body]
    return "\r\n".join(lines).encode("utf-8")


@pytest.mark.parametrize(
    "subject",
    [
        "Refund request — Order #ORD-2026-000123",
        "Refund request \u2013 Order #ORD-2026-000123",
        "Refund request - Order #ORD-2026-000123",
        "Refund request: Order #ORD-2026-000123",
        "refund REQUEST — order ORD-2026-000123",
        "  Refund    request —  Order   # ORD-2026-000123  ",
        "Re: Refund request — Order #ORD-2026-000123",
        "RE: RE: Fwd: Refund request — Order #ORD-2026-000123",
        "FW: AW: WG: SV: Refund request — Order #ord-2026-000123",
        "Re[2]: Refund request — Order # ORD - 2026 - 000123",
        "Refund request — Order #ord \u2013 2026 \u2013 000123",
    ],
)
def test_subject_variants(subject):
    parsed = parse(mail(subject, "Paid $49 by Visa on 2026-03-03. Charged twice."))
    assert parsed.is_refund_subject
    assert parsed.order_number == "ORD-2026-000123"


@pytest.mark.parametrize(
    ("subject", "body", "order", "request_number"),
    [
        ("Hello", "Order number: ORD-2026-000123", "ORD-2026-000123", None),
        ("Hello", "about order #ORD-2026-000123, thanks", "ORD-2026-000123", None),
        ("Hello", "order ord - 2026 - 000123", "ORD-2026-000123", None),
        ("Re: Your refund request RR-2026-000045", "see RR-2026-000099", None, "RR-2026-000045"),
        ("Hello", "my request rr-2026-000045", None, "RR-2026-000045"),
        ("Hello", "ORD-2026-12345 is too short", None, None),
        ("Refund request ORD-2026-000123", "Order ORD-2026-000999", "ORD-2026-000123", None),
    ],
)
def test_order_and_request_numbers(subject, body, order, request_number):
    parsed = parse(mail(subject, body))
    assert parsed.order_number == order
    assert parsed.request_number == request_number
    assert parsed.is_refund_subject == ("refund request" in subject.lower())


@pytest.mark.parametrize(
    ("text", "expected", "problem"),
    [
        ("Payment date: 2026-03-03", date(2026, 3, 3), None),
        ("Paid on 3 March 2026", date(2026, 3, 3), None),
        ("paid on the 3rd of March, 2026", date(2026, 3, 3), None),
        ("Paid on March 3, 2026", date(2026, 3, 3), None),
        ("paid Mar 3rd 2026", date(2026, 3, 3), None),
        ("paid 13/03/2026", date(2026, 3, 13), None),
        ("paid 03/13/2026", date(2026, 3, 13), None),
        ("paid 03/03/2026", date(2026, 3, 3), None),
        ("paid 03.04.2026", date(2026, 4, 3), None),
        ("paid 2026/03/03", date(2026, 3, 3), None),
        ("paid 3/4/26", None, "ambiguous"),
        ("Paid on 3 March", None, "has no year"),
        ("Paid on 31/02/2026", None, "not a real date"),
        ("I paid yesterday", None, "relative"),
        ("no date here", None, "No payment date found."),
        ("Signed up 2026-01-02, paid 2026-03-03", date(2026, 3, 3), None),
    ],
)
def test_payment_dates(text, expected, problem):
    parsed = parse(mail("Refund request — Order #ORD-2026-000123", text))
    assert parsed.payment_date == expected
    if problem:
        assert any(problem in p for p in parsed.problems), parsed.problems
    else:
        assert not any("payment date" in p.lower() for p in parsed.problems), parsed.problems


@pytest.mark.parametrize(
    ("text", "amount", "currency", "method"),
    [
        ("$49.00 by Visa", "49.00", "USD", "Visa"),
        ("amount: 49 USD", "49", "USD", None),
        ("€49,00 via PayPal", "49.00", "EUR", "PayPal"),
        ("49.00 EUR by bank transfer", "49.00", "EUR", "bank transfer"),
        ("USD 49 with my Mastercard", "49", "USD", "Mastercard"),
        ("1.234,56 € by American Express", "1234.56", "EUR", "Amex"),
        ("£1,234.50 by debit card", "1234.50", "GBP", "card"),
        ("49 usd, wire", "49", "USD", "bank transfer"),
        ("US$ 49 by card", "49", "USD", "card"),
        ("A$59 by Visa", "59", "AUD", "Visa"),
        ("49 dollars", "49", "USD", None),
        ("Total: 49\nCurrency: EUR", "49", "EUR", None),
    ],
)
def test_money_and_method(text, amount, currency, method):
    parsed = parse(mail("Refund request — Order #ORD-2026-000123", text))
    assert parsed.amount == Decimal(amount)
    assert parsed.currency == currency
    assert parsed.method == method


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("I was charged twice for one order.", "duplicate_charge"),
        ("There is a duplicate payment on my card.", "duplicate_charge"),
        ("I was billed in error.", "billing_error"),
        ("You took the wrong amount.", "billing_error"),
        ("It doesn't work as advertised.", "not_as_advertised"),
        ("The bug I reported is not fixed.", "unresolved_bug"),
        ("Bug not fixed after two months.", "unresolved_bug"),
        ("There was an outage on Friday.", "outage"),
        ("Your service was down all day.", "outage"),
        ("I never received the license.", "not_delivered"),
        ("The service was not delivered.", "not_delivered"),
        ("The plugin is defective.", "defective"),
        ("It was broken on delivery.", "defective"),
        ("We no longer need it.", "no_longer_needed"),
        ("It is not a fit for us.", "no_longer_needed"),
        ("We don't need it.", "no_longer_needed"),
        ("I want to download my data before I go.", None),
        ("Please refund me.", None),
    ],
)
def test_reason_wording(text, code):
    parsed = parse(mail("Refund request — Order #ORD-2026-000123", f"Hello.\n{text}\n"))
    assert parsed.reason_code == code
    if code:
        assert parsed.reason_text == text
        assert code in REASONS


def test_reason_label_keeps_the_customers_words():
    parsed = parse(mail("Hi", "Reason: the sending service was down\nfor two days.\nName: Jo Ko"))
    assert parsed.reason_code == "outage"
    assert parsed.reason_text == "the sending service was down for two days."
    assert parsed.names == ("Jo Ko",)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Name: Jane Doe", ("Jane Doe",)),
        ("Full name: Jane Q. Doe", ("Jane Q. Doe",)),
        ("My name is Jane Doe and I want a refund.", ("Jane Doe",)),
        ("Hi, this is Jane Doe from Acme.", ("Jane Doe",)),
        ("Name: Jane Doe\nMy name is Jane Doe.", ("Jane Doe",)),
        ("Nothing about names.", ()),
    ],
)
def test_names(text, names):
    parsed = parse(mail("Hi", text))
    assert parsed.names == names
    assert parsed.sender_name == (names[0] if names else "Jane Doe")  # From display name


def test_emails_account_email_first():
    parsed = parse(mail("Hi", "Write to me at Me@Home.example.\nAccount email: jane@work.example"))
    assert parsed.emails == ("jane@work.example", "me@home.example")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
        ({"Auto-Submitted": "auto-generated; owner=x"}, "Auto-Submitted: auto-generated"),
        (
            {"X-Auto-Response-Suppress": "OOF, AutoReply"},
            "X-Auto-Response-Suppress: OOF, AutoReply",
        ),
        ({"Precedence": "bulk"}, "Precedence: bulk"),
        ({"Precedence": "junk"}, "Precedence: junk"),
        ({"Precedence": "auto_reply"}, "Precedence: auto_reply"),
    ],
)
def test_auto_headers(headers, reason):
    parsed = parse(mail("Refund request — Order #ORD-2026-000123", "x", **headers))
    assert parsed.is_auto
    assert parsed.auto_reason == reason


@pytest.mark.parametrize(
    "headers",
    [{"Auto-Submitted": "no"}, {"Precedence": "list"}, {"X-Auto-Response-Suppress": "None"}],
)
def test_not_auto(headers):
    assert not parse(mail("Hi", "x", **headers)).is_auto


def test_threading_ids_without_brackets_in_order():
    parsed = parse(
        mail(
            "Re: x",
            "x",
            Message_ID="<m1@x>",
            In_Reply_To="<p2@x>",
            References="<p0@x>\r\n <p1@x> <p2@x>",
        )
    )
    assert parsed.message_id == "m1@x"
    assert parsed.references == ("p2@x", "p0@x", "p1@x")


def test_field_problems_are_not_noted_for_replies_with_a_request_number():
    parsed = parse(mail("Re: Your refund request RR-2026-000001", "Thanks!"))
    assert parsed.request_number == "RR-2026-000001"
    assert parsed.problems == ()


def test_a_new_request_missing_everything_says_so():
    parsed = parse(mail("Hello", "Please help."))
    assert "No order number in the subject or the body." in parsed.problems
    assert "No payment amount found." in parsed.problems
    assert "No payment date found." in parsed.problems
    assert "No payment method found." in parsed.problems
    assert "No reason given." in parsed.problems


# --- big and broken input -------------------------------------------------------------

HEAD = (
    b"From: Big <big@example.com>\r\nSubject: Refund request - Order #ORD-2026-000123\r\n"
    b"MIME-Version: 1.0\r\n"
)


def test_a_30_mb_text_body_is_read_up_to_the_limit():
    first = b"Paid $49.00 by Visa on 2026-03-03. We no longer need it.\r\n"
    filler = (b"x" * 76 + b"\r\n") * (30_000_000 // 78)
    parsed = parse(HEAD + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + first + filler)
    assert parsed.order_number == "ORD-2026-000123"
    assert parsed.amount == Decimal("49.00")
    assert parsed.reason_code == "no_longer_needed"
    assert len(parsed.body) <= MAX_TEXT
    assert any("larger than 1 MB" in p for p in parsed.problems)


def test_a_30_mb_base64_body_and_attachment():
    text = base64.encodebytes(b"Paid 2026-03-03, 49 USD, Visa. " + b"y" * 22_000_000)
    blob = b"\x89PNG" + b"\x00" * 22_000_000
    raw = (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + text
        + b"\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=big.png"
        + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(blob)
        + b"\r\n--b--\r\n"
    )
    parsed = parse(raw)
    assert parsed.payment_date == date(2026, 3, 3)
    assert len(parsed.body) <= MAX_TEXT
    assert [(a.name, a.size) for a in parsed.attachments] == [("big.png", len(blob))]
    assert parsed.attachments[0].content == blob


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 100,
        b"\xff\xfe\xfd" * 1000,
        b"Subject: =?utf-8?b?!!!?=\r\n\r\n",
        b"From: <<<@>>>\r\nSubject: \xff\xfe\r\n\r\n\xff",
        b"From: a@b.c\r\nContent-Type: multipart/mixed\r\n\r\nno boundary",
        b"From: a@b.c\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n",
        b"From: a@b.c\r\nContent-Type: text/plain; charset=base64\r\n\r\nhi",
        b"From: a@b.c\r\nContent-Type: text/plain; charset=rot13\r\n\r\nhi",
        b"From: a@b.c\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!====",
        b"From: a@b.c\r\nContent-Type: message/rfc822\r\n\r\n",
        b"Subject: " + b"x" * 100_000 + b"\r\n\r\n",
        b"Subject: " + b"=?x-foo?q?" + b"a" * 30_000 + b"?=\r\n\r\n",
        b"From: a@b.c\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" * 300,
    ],
)
def test_broken_input_never_raises(raw):
    parsed = parse(raw)
    assert_sane(parsed)


def test_not_bytes_is_a_problem_not_an_exception():
    assert parse(None).problems  # type: ignore[arg-type]
    assert parse("From: a@b.c\n\nhi").sender_email == "a@b.c"  # type: ignore[arg-type]


def assert_sane(parsed) -> None:
    assert isinstance(parsed, ParsedMail)
    assert len(parsed.subject) <= MAX_SUBJECT
    assert len(parsed.attachments) <= MAX_ATTACHMENTS
    assert all(isinstance(p, str) and p for p in parsed.problems)
    data = parsed.as_dict()
    text = json.dumps(data, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates: storable in PostgreSQL
    assert "\x00" not in text and "\\u0000" not in text
    assert parsed.reason_code is None or parsed.reason_code in REASONS


def test_parse_is_pure():
    tree = ast.parse(Path(parse_module.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in getattr(node, "names", [])]
            assert not any(n.split(".")[0] == "django" for n in names)
        if isinstance(node, ast.Attribute):
            assert node.attr not in ("now", "today", "utcnow", "time"), node.attr


# --- fuzzing --------------------------------------------------------------------------

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HEADER_NAMES = [
    "From", "To", "Subject", "Reply-To", "Sender", "Message-ID", "In-Reply-To", "References",
    "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted",
    "Precedence", "X-Auto-Response-Suppress", "MIME-Version", "Date",
]  # fmt: skip
CHARSETS = [
    "utf-8", "iso-8859-1", "windows-1252", "shift_jis", "utf-16", "koi8-r", "gb2312",
    "us-ascii", "x-unknown", "utf-7", "base64", "rot13", "", "\"", "utf-8'en'", "idna",
]  # fmt: skip
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "bogus", ""]
TYPES = [
    "text/plain", "text/html", "application/pdf", "image/png", "message/rfc822",
    "multipart/mixed", "multipart/alternative", "multipart/report", "message/delivery-status",
    "text", "/", "",
]  # fmt: skip
words = st.text(max_size=60)
ascii_words = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@st.composite
def header_values(draw):
    kind = draw(st.sampled_from(["text", "encoded", "address", "ids", "order", "bytes"]))
    if kind == "encoded":
        charset = draw(st.sampled_from(CHARSETS))
        mode = draw(st.sampled_from("bBqQx"))
        return f"=?{charset}?{mode}?{draw(ascii_words)}?=".encode()
    if kind == "address":
        return f'"{draw(words)}" <{draw(ascii_words)}@{draw(ascii_words)}>'.encode(
            "utf-8", "surrogatepass"
        )
    if kind == "ids":
        return " ".join(f"<{draw(ascii_words)}>" for _ in range(draw(st.integers(0, 4)))).encode()
    if kind == "order":
        prefix = draw(st.sampled_from(["Re: ", "Fwd: ", "AW: ", "", "re:re:"]))
        return (
            f"{prefix}Refund request — Order #ORD-2026-{draw(st.integers(0, 999999)):06d}".encode()
        )
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    return draw(words).encode("utf-8", "surrogatepass")


@st.composite
def parts(draw, boundary: bytes, depth: int = 0):
    ctype = draw(st.sampled_from(TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    header = f"Content-Type: {ctype}; charset={charset}".encode()
    if ctype.startswith("multipart") and depth < 2:
        inner = draw(st.binary(min_size=1, max_size=8).map(lambda b: b.hex().encode()))
        header += b'; boundary="' + inner + b'"'
        body = draw(bodies(inner, depth + 1))
    else:
        text = draw(words)
        raw = text.encode("utf-8", "surrogatepass")
        if encoding == "base64" and draw(st.booleans()):
            raw = base64.encodebytes(raw)
        body = draw(st.sampled_from([raw, raw + draw(st.binary(max_size=60)), draw(st.binary())]))
    lines = [header, b"Content-Transfer-Encoding: " + encoding.encode()]
    if draw(st.booleans()):
        disposition = draw(st.sampled_from(["attachment", "inline", "bogus"]))
        name = draw(words).encode("utf-8", "surrogatepass")
        lines.append(f"Content-Disposition: {disposition}; filename=".encode() + name)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@st.composite
def bodies(draw, boundary: bytes, depth: int = 0):
    chunks = []
    for part in draw(st.lists(parts(boundary, depth), max_size=3)):
        mark = draw(st.sampled_from([boundary, boundary + b"x", b""]))
        chunks.append(b"--" + mark + b"\r\n" + part + b"\r\n")
    if draw(st.booleans()):
        chunks.append(b"--" + boundary + b"--\r\n")
    return b"".join(chunks)


@st.composite
def near_valid_mails(draw):
    headers = draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_values()), max_size=8))
    boundary = draw(st.text(alphabet="abcXYZ019'=_-", min_size=1, max_size=20)).encode()
    lines = [name.encode() + b": " + value for name, value in headers]
    if draw(st.booleans()):
        lines.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"')
        body = draw(bodies(boundary))
    else:
        body = draw(st.text(max_size=400)).encode("utf-8", "surrogatepass")
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + body
    if draw(st.booleans()):
        raw = raw.replace(b"\r\n", b"\n")
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@FUZZ
@given(st.binary(max_size=4000))
def test_fuzz_arbitrary_bytes(raw):
    assert_sane(parse(raw))


@FUZZ
@given(near_valid_mails())
def test_fuzz_near_valid_mails(raw):
    assert_sane(parse(raw))
