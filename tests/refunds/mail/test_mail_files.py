"""A refund mail's evidence is read once, and staff completing a triaged mail file it
with the same arguments as the mail itself would (one builder)."""

import pytest
from django.contrib.auth.models import Group

from accounts import uploads
from refunds import services
from refunds.mail import intake
from refunds.models import RefundRequest
from tests.factories import UserFactory
from tests.mailtools import trusted_mx  # noqa: F401  (a fixture)
from tests.refunds.mail.test_intake import ask, customer  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("trusted_mx")]
PDF = b"%PDF-1.4 statement"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)


def test_a_mailed_request_reads_each_attachment_once(customer, monkeypatch):  # noqa: F811
    _, order, owner = customer
    heads = []
    sniff = uploads.sniff_type
    monkeypatch.setattr(uploads, "sniff_type", lambda head: heads.append(head) or sniff(head))
    raw = ask(
        order,
        owner,
        attach=[
            ("statement.pdf", PDF, "application", "pdf"),
            ("receipt.png", PNG, "image", "png"),
            ("tool.exe", b"MZ\x90\x00binary", "application", "octet-stream"),
        ],
    )
    stored, _ = intake.mail_receive(raw=raw, source="test")
    assert stored.status == "request"
    request = RefundRequest.objects.get()
    assert sorted(e.name for e in request.evidence.all()) == ["receipt.png", "statement.pdf"]
    assert sorted(heads) == sorted([PDF, PNG, b"MZ\x90\x00binary"])


class Recorded(Exception):
    pass


def test_staff_completion_files_what_the_mail_itself_would(customer, monkeypatch):  # noqa: F811
    _, order, owner = customer
    calls = []

    def record(**arguments):
        calls.append(arguments)
        raise Recorded

    monkeypatch.setattr(services, "refund_request_submit", record)
    raw = ask(
        order,
        owner,
        attach=[
            ("statement.pdf", PDF, "application", "pdf"),
            ("tool.exe", b"MZ\x90\x00binary", "application", "octet-stream"),
        ],
    )
    # The mail's own filing is recorded, then it breaks: the mail lands in triage.
    stored, _ = intake.mail_receive(raw=raw, source="test")
    assert stored.status == "triage"
    reviewer = UserFactory(is_staff=True)
    reviewer.groups.add(Group.objects.get(name="Billing reviewer"))
    with pytest.raises(Recorded):
        intake.mail_complete(
            actor=reviewer,
            mail=stored,
            order_number=order.number,
            requester_email=owner.email,
            reason=calls[0]["reason"],
        )
    by_mail, by_staff = calls

    def comparable(arguments):
        evidence = [(e.name, e.content_type, e.content) for e in arguments.pop("evidence")]
        arguments.pop("now")
        return arguments | {"evidence": evidence}

    by_mail, by_staff = comparable(by_mail), comparable(by_staff)
    assert by_staff == by_mail
    assert by_mail["evidence"] == [("statement.pdf", "application/pdf", PDF)]
    assert "The mail says: paid on 2 March 2026, 149.00 USD, by Visa." in by_mail["text"]
    assert "Attachments not kept: tool.exe" in by_mail["text"]


def test_an_order_number_past_six_digits_is_read():
    """Order numbers are the id padded to six digits: the millionth and later have seven."""
    from refunds.mail.parse import parse

    raw = (
        b"From: a@b.example\r\nTo: billing@vendor.example\r\n"
        b"Subject: Refund request - Order #ORD-2026-1000001\r\n"
        b"Message-ID: <seven@b.example>\r\n\r\nPlease refund RR-2026-1234567.\r\n"
    )
    parsed = parse(raw)
    assert parsed.order_number == "ORD-2026-1000001"
