"""One mail store: a mail is answered only after its row is committed, never twice, and
a crash between two steps never loses it."""

from datetime import timedelta

import pytest
from django.core import mail as outbox
from django.test import TestCase
from django.utils import timezone

from inbox import services, tasks
from inbox.models import InboundMail
from refunds.mail import intake
from refunds.models import RefundRequest
from tests.factories import UserFactory, owner_of
from tests.mailtools import build, trusted_mx  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("trusted_mx")]


@pytest.fixture
def customer(paid_order, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    account, order = paid_order()
    return account, order, owner_of(account)


def test_the_answer_is_queued_only_once_the_outcome_is_committed(customer):
    UserFactory(email="stranger@else.example")
    raw = build(
        sender="stranger@else.example",
        subject="Refund please",
        body="Refund ORD-2026-000001.",
        message_id="<once@x.example>",
    )
    with TestCase.captureOnCommitCallbacks(execute=False) as queued:
        stored, _ = services.mail_receive(raw=raw, source="test", mailbox="refunds")
    assert stored.status == "triage" and stored.answer and outbox.outbox == []
    assert len(queued) == 1  # sent by the worker after the commit, not before
    queued[0]()
    queued[0]()  # a redelivered task sends nothing more
    tasks.send_mail_answer(stored.pk)
    assert len(outbox.outbox) == 1
    stored.refresh_from_db()
    assert stored.answered_at is not None


def test_a_failed_send_is_tried_again_and_still_sent_once(customer, monkeypatch):
    UserFactory(email="stranger@else.example")
    raw = build(
        sender="stranger@else.example",
        subject="Refund please",
        body="Refund ORD-2026-000001.",
        message_id="<once@x.example>",
    )
    with TestCase.captureOnCommitCallbacks(execute=False):
        stored, _ = services.mail_receive(raw=raw, source="test", mailbox="refunds")
    from django.core.mail import EmailMessage as Outgoing

    def smtp_down(self, *args, **kwargs):
        raise ConnectionError("smtp down")

    monkeypatch.setattr(Outgoing, "send", smtp_down)
    with pytest.raises(ConnectionError):
        services.answer_send(stored.pk)
    stored.refresh_from_db()
    assert stored.answered_at is None  # released for the retry
    monkeypatch.undo()
    assert services.answer_send(stored.pk) and not services.answer_send(stored.pk)
    assert len(outbox.outbox) == 1


def test_a_crash_in_the_handler_rolls_back_its_answer_and_keeps_the_mail(customer, monkeypatch):
    _, order, owner = customer
    real = intake.handle

    def crash_after_answering(mail, message, now):
        real(mail, message, now)  # the request is filed and its answer written...
        raise RuntimeError("worker killed")  # ...then the process dies

    monkeypatch.setattr(
        "inbox.handlers.HANDLERS",
        {"refunds": intake.handler().__class__(mailbox="refunds", handle=crash_after_answering)},
    )
    raw = build(
        sender=owner.email,
        subject=f"Refund request — Order #{order.number}",
        body="Reason: it broke.",
        message_id="<once@x.example>",
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        stored, created = services.mail_receive(raw=raw, source="test", mailbox="refunds")
    assert created and stored.status == "triage"  # kept for staff, with why
    assert RefundRequest.objects.count() == 0  # what the handler did is rolled back
    assert [m for m in outbox.outbox if "Auto-Submitted" in m.extra_headers] == []


def test_a_mail_stored_but_never_processed_is_processed_by_the_sweep(customer):
    _, order, owner = customer
    raw = build(
        sender=owner.email,
        subject=f"Refund request — Order #{order.number}",
        body="Reason: it broke.",
        message_id="<once@x.example>",
    )
    # The process died right after the row was committed.
    from django.core.files.base import ContentFile

    stored = InboundMail.objects.create(
        mailbox="refunds",
        message_id="once@x.example",
        source="test",
        raw=ContentFile(raw, name="once.eml"),
        size=len(raw),
        sender=owner.email,
        proof="dmarc",
        received_at=timezone.now() - timedelta(minutes=30),
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.mail_process_stale() == 1
        assert tasks.mail_process_stale() == 0
    stored.refresh_from_db()
    assert stored.status == "request" and RefundRequest.objects.count() == 1
    # The same mail fetched again is a duplicate: nothing new.
    again, created = services.mail_receive(raw=raw, source="maildir", mailbox="refunds")
    assert not created and again.pk == stored.pk and RefundRequest.objects.count() == 1


def test_a_mail_without_a_message_id_is_stored_once_by_its_content(customer):
    UserFactory(email="stranger@else.example")
    raw = build(sender="stranger@else.example", subject="hello", body="no id", message_id=None)
    first, created = services.mail_receive(raw=raw, source="test", mailbox="support")
    second, again = services.mail_receive(raw=raw, source="test", mailbox="refunds")
    assert created and not again and first.pk == second.pk
    assert first.message_id.startswith("sha256:")


def test_mail_to_the_support_address_goes_to_supports_handler_on_the_webhook():
    from inbox.webhook import mailbox_of

    assert mailbox_of(["support@vendor.example"]) == "support"
    assert mailbox_of(["Support <support+inc-2026-000001.abc@vendor.example>"]) == "support"
    assert mailbox_of(["billing@vendor.example"]) == "refunds"
    assert mailbox_of([]) == "refunds"
