"""A fetch hands its mails over in batches (inbox.services.mail_receive_many): stored
in one INSERT, processed in one transaction, their answers published together. A batch
must come out as the same mails taken one by one would, whatever is in it, and one bad
mail must not hold back the others."""

import dataclasses
import logging

import pytest
from django.core import mail as sent_mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import OutboxMessage
from inbox import fetch, handlers, services
from inbox.models import InboundMail
from refunds.models import RefundRequest
from tests.factories import UserFactory, owner_of
from tests.mailtools import build, trusted_mx  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("trusted_mx")]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def mails_of(order, owner, tag: str) -> list[bytes]:
    """What a billing mailbox receives in a morning, for one customer: a proven request,
    its reply (quoting it: the same batch), a request without an order, a stranger's,
    an unproven request (it waits for the owner's confirmation), an auto-reply, a mail
    whose sender writes their address in capitals, and the first request again."""
    request = build(
        sender=f"{owner.get_full_name()} <{owner.email}>",
        subject=f"Refund request — Order #{order.number}",
        body=f"Order: {order.number}\nPaid on 2 March 2026, $149.00 by Visa.\n"
        "Reason: we were charged twice for it.\n",
        message_id=f"<request-{tag}@customer.example>",
    )
    return [
        request,
        build(
            sender=owner.email,
            subject=f"Re: Refund request — Order #{order.number}",
            body="The bank statement is on its way.\n\nOn Monday, billing wrote:\n> Thanks",
            message_id=f"<reply-{tag}@customer.example>",
            headers={"In-Reply-To": f"<request-{tag}@customer.example>"},
        ),
        build(
            sender=owner.email,
            subject="Money back please",
            body="Reason: the plugin is broken.",
            message_id=f"<no-order-{tag}@customer.example>",
        ),
        build(
            sender="stranger@else.example",
            subject=f"Refund request - Order #{order.number}",
            body="Reason: we no longer need it.",
            message_id=f"<stranger-{tag}@else.example>",
        ),
        build(
            sender=owner.email,
            subject=f"Refund of {order.number}",
            body=f"Order: {order.number}\nReason: we were charged twice for it.\n",
            message_id=f"<unproven-{tag}@customer.example>",
            proven=False,
        ),
        build(
            sender=owner.email,
            subject="Out of office",
            body="I am away until Monday.",
            message_id=f"<ooo-{tag}@customer.example>",
            headers={"Auto-Submitted": "auto-replied"},
        ),
        build(
            sender=owner.email.upper(),
            subject="Refund",
            body="Reason: charged twice.",
            message_id=f"<capitals-{tag}@customer.example>",
        ),
        request,  # delivered twice
    ]


def outcome(mail: InboundMail) -> tuple:
    """What a mail became, without what differs between two customers."""
    request = RefundRequest.objects.filter(number=mail.thread).first()
    return (
        mail.status,
        mail.reasons,
        bool(mail.answer_subject),
        bool(mail.answer),
        mail.proof,
        bool(mail.thread),
        mail.account_id is not None,
        mail.confirm_user_id is not None,
        request.lines.count() if request else None,
        OutboxMessage.objects.filter(task__startswith="inbox.", args=[mail.pk]).count(),
    )


def test_a_batch_comes_out_as_the_same_mails_taken_one_by_one(
    paid_order, django_capture_on_commit_callbacks
):
    UserFactory(email="stranger@else.example")
    one_account, one_order = paid_order()
    batch_account, batch_order = paid_order()
    single = mails_of(one_order, owner_of(one_account), "single")
    batch = mails_of(batch_order, owner_of(batch_account), "batch")

    with django_capture_on_commit_callbacks(execute=True):
        alone = [services.mail_receive(raw=raw, source="test", mailbox="refunds") for raw in single]
    sent_alone = len(sent_mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        together = services.mail_receive_many(batch, source="test", mailbox="refunds")

    assert [created for _, created in together] == [created for _, created in alone]
    assert [created for _, created in together] == [True] * 7 + [False]
    assert together[-1][0].pk == together[0][0].pk  # the duplicate is the first one
    for (one, _), (other, _) in zip(alone, together, strict=True):
        one.refresh_from_db()
        other.refresh_from_db()
        assert outcome(other) == outcome(one), other.message_id
    statuses = [mail.status for mail, _ in together]
    assert statuses == [
        "request",
        "reply",
        "triage",
        "triage",
        "confirm",
        "auto",
        "triage",
        "request",
    ]
    # The same answers and confirmation links went out, once each.
    assert len(sent_mail.outbox) - sent_alone == sent_alone > 0


def test_mails_stored_before_are_duplicates_and_not_processed_again(paid_order):
    account, order = paid_order()
    raws = mails_of(order, owner_of(account), "again")
    first = services.mail_receive_many(raws, source="test", mailbox="refunds")
    with CaptureQueriesContext(connection) as queries:
        again = services.mail_receive_many(raws, source="test", mailbox="refunds")
    assert [created for _, created in again] == [False] * len(raws)
    assert [mail.pk for mail, _ in again] == [mail.pk for mail, _ in first]
    assert len(queries) == 1  # the look-up of their Message-IDs: nothing else
    assert InboundMail.objects.count() == len(raws) - 1
    assert RefundRequest.objects.count() == 1


def test_one_mail_that_breaks_its_handler_is_triaged_and_the_rest_are_processed(
    paid_order, monkeypatch, caplog
):
    account, order = paid_order()
    raws = mails_of(order, owner_of(account), "bad")
    refunds = handlers.HANDLERS["refunds"]

    def handle(mail, message, now):
        if "no-order" in mail.message_id:
            raise RuntimeError("a bug")
        return refunds.handle(mail, message, now)

    monkeypatch.setitem(handlers.HANDLERS, "refunds", dataclasses.replace(refunds, handle=handle))
    with caplog.at_level(logging.WARNING):
        result = services.mail_receive_many(raws, source="test", mailbox="refunds")

    assert "could not be done together; one by one instead" in caplog.text
    statuses = {mail.message_id.split("@")[0]: mail.status for mail, _ in result}
    assert statuses["no-order-bad"] == "triage"
    assert InboundMail.objects.get(message_id="no-order-bad@customer.example").reasons == [
        "The portal could not process this mail (RuntimeError)."
    ]
    assert statuses["request-bad"] == "request" and statuses["reply-bad"] == "reply"
    assert statuses["unproven-bad"] == "confirm" and statuses["ooo-bad"] == "auto"
    assert RefundRequest.objects.count() == 1


def strangers(count: int, tag: str) -> list[bytes]:
    return [
        build(
            sender=f"someone{n}@else.example",
            subject=f"Refund please {n}",
            body=f"Refund ORD-2001-{n:06d}, thanks.",  # no such order
            message_id=f"<{tag}-{n}@else.example>",
        )
        for n in range(count)
    ]


def test_a_batch_costs_the_same_queries_for_5_mails_as_for_40(paid_order):
    paid_order()
    UserFactory(email="someone3@else.example")  # a user of no account: triage too
    counts = {}
    for size in (5, 40):
        with CaptureQueriesContext(connection) as queries:
            result = services.mail_receive_many(
                strangers(size, f"size{size}"), source="test", mailbox="refunds"
            )
        assert {mail.status for mail, _ in result} == {"triage"}
        assert all(mail.answer for mail, _ in result)
        counts[size] = len(queries)
    assert counts[5] == counts[40]
    assert OutboxMessage.objects.filter(task="inbox.tasks.send_mail_answer").count() == 45


def test_the_answers_of_a_batch_are_sent_once_each_after_it_commits(
    paid_order, django_capture_on_commit_callbacks
):
    paid_order()
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        result = services.mail_receive_many(strangers(6, "once"), source="test", mailbox="refunds")
        assert sent_mail.outbox == []  # nothing before the commit
    assert len(hooks) == 1  # one publish for the batch's answers
    hooks[0]()
    assert sorted(message.to[0] for message in sent_mail.outbox) == sorted(
        mail.sender for mail, _ in result
    )
    assert not OutboxMessage.objects.filter(
        task__startswith="inbox.", sent_at__isnull=True
    ).exists()


def test_a_fetch_hands_over_batches_of_at_most_batch_mails_and_batch_bytes(monkeypatch):
    monkeypatch.setattr(services, "BATCH", 3)
    monkeypatch.setattr(services, "BATCH_BYTES", 100)
    sizes = [10, 10, 10, 10, 90, 200, 5, 5]
    batches = fetch.batches(((n, b"x" * size) for n, size in enumerate(sizes)), None)
    assert [[key for key, _ in batch] for batch in batches] == [
        [0, 1, 2],  # three mails
        [3, 4],  # a third would pass 100 bytes
        [5],  # bigger than a batch: alone
        [6, 7],
    ]
    limited = fetch.batches(((n, b"x") for n in range(10)), 4)
    assert [len(batch) for batch in limited] == [3, 1]
