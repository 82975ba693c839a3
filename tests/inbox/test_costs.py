"""What one more mail costs: a fixed number of queries whatever the number of mails
already stored, and parsing in at most five times the mail's size in memory."""

import os
import tracemalloc
from email.message import EmailMessage

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inbox import services
from inbox.parse import read
from refunds.models import RefundRequest
from tests.factories import owner_of
from tests.mailtools import build, trusted_mx  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("trusted_mx")]


@pytest.fixture
def store(paid_order, settings, tmp_path):
    """`count` mails already stored and processed (strangers' mails, in triage), and a
    paid order of an owner who writes next."""
    settings.MEDIA_ROOT = str(tmp_path)
    account, order = paid_order()

    def fill(count: int):
        for n in range(count):
            raw = build(
                sender=f"someone{n}@else.example",
                subject=f"Refund please {n}",
                body=f"Refund ORD-2026-{n:06d}, thanks.",
                message_id=f"<old-{n}@else.example>",
            )
            services.mail_receive(raw=raw, source="test", mailbox="refunds")
        return order, owner_of(account)

    return fill


def queries_for(raw: bytes) -> int:
    with CaptureQueriesContext(connection) as captured:
        mail, created = services.mail_receive(raw=raw, source="test", mailbox="refunds")
    assert created
    return mail, len(captured.captured_queries)


# Inside the test's transaction the store takes a savepoint (two statements) that it
# does not need in production, and no answer is sent (that comes after the commit).
TRIAGE_QUERIES = 9  # savepoint, insert, release, savepoint, lock, sender, outbox, outcome...
REQUEST_QUERIES = 23  # ...the sender's accounts, the order, its lines, and the filing


@pytest.mark.parametrize("stored", [5, 50])
def test_one_more_mail_costs_the_same_queries_whatever_the_store_holds(store, stored):
    order, owner = store(stored)
    stranger = build(
        sender="new@else.example",
        subject="Refund please",
        body="Refund my order.",
        message_id="<new-stranger@else.example>",
    )
    mail, count = queries_for(stranger)
    assert mail.status == "triage" and mail.answer
    assert count == TRIAGE_QUERIES

    request = build(
        sender=f"{owner.get_full_name()} <{owner.email}>",
        subject=f"Refund request — Order #{order.number}",
        body=f"Order: {order.number}\nPaid on 2 March 2026, $149.00 by Visa.\n"
        "Reason: we were charged twice for it.\n",
        message_id="<new-request@customer.example>",
    )
    mail, count = queries_for(request)
    assert mail.status == "request" and RefundRequest.objects.filter(number=mail.thread).exists()
    assert count == REQUEST_QUERIES


def big_mail(megabytes: float) -> tuple[bytes, bytes]:
    """A mail of about `megabytes` MB, nearly all of it one base64 PDF attachment."""
    content = b"%PDF-1.4\n" + os.urandom(int(megabytes * 1024 * 1024 * 0.73))
    message = EmailMessage()
    message["From"] = "jane@customer.example"
    message["To"] = "billing@vendor.example"
    message["Subject"] = "Refund request — Order #ORD-2026-000001"
    message["Message-ID"] = "<big@customer.example>"
    message.set_content("The statement is attached.\n")
    message.add_attachment(content, maintype="application", subtype="pdf", filename="s.pdf")
    return message.as_bytes(), content


@pytest.mark.django_db(False)
def test_parsing_takes_at_most_five_times_the_mails_size():
    raw, content = big_mail(6)
    assert len(raw) > 6_000_000
    tracemalloc.start()
    try:
        message = read(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [attachment] = message.attachments
    assert (attachment.name, attachment.content) == ("s.pdf", content)
    assert peak <= 5 * len(raw), f"{peak / len(raw):.1f} times the mail's size"
