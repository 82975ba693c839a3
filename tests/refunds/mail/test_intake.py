"""The save layer: each mail stored once, then a request, a reply, triage or nothing."""

from email.message import EmailMessage

import pytest
from django.core import mail as outbox

from accounts.models import Membership
from inbox.models import InboundMail
from refunds import services
from refunds.mail import intake
from refunds.models import RefundRequest
from tests.factories import MembershipFactory, UserFactory, owner_of
from tests.mailtools import auth_results, trusted_mx  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("trusted_mx")]


def build(*, sender, subject, body, message_id="<m1@customer.example>", headers=None, attach=()):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "billing@vendor.example"
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    message["Authentication-Results"] = auth_results(sender)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for name, content, maintype, subtype in attach:
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


@pytest.fixture
def customer(paid_order, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    account, order = paid_order()
    return account, order, owner_of(account)


def ask(order, user, **kwargs):
    body = kwargs.pop(
        "body",
        f"Hello,\n\nName: {user.get_full_name()}\nOrder: {order.number}\n"
        "Paid on 2 March 2026, $149.00 by Visa.\nReason: we were charged twice for it.\n",
    )
    return build(
        sender=f"{user.get_full_name()} <{user.email}>",
        subject=kwargs.pop("subject", f"Refund request — Order #{order.number}"),
        body=body,
        **kwargs,
    )


def test_a_complete_mail_becomes_a_request_and_is_acknowledged(
    customer, django_capture_on_commit_callbacks
):
    account, order, owner = customer
    raw = ask(order, owner, attach=[("statement.pdf", b"%PDF-1.4 statement", "application", "pdf")])
    with django_capture_on_commit_callbacks(execute=True):
        stored, created = intake.mail_receive(raw=raw, source="test")
    stored.refresh_from_db()
    assert created and stored.status == "request"
    request = RefundRequest.objects.get(number=stored.thread)
    assert (request.channel, request.reason, request.account) == (
        "email",
        "duplicate_charge",
        account,
    )
    assert request.lines.count() == 2 and request.evidence.get().name == "statement.pdf"
    assert "The mail says: paid on 2 March 2026, 149.00 USD, by Visa." in request.text
    acknowledgement = [m for m in outbox.outbox if request.number in m.subject]
    assert acknowledgement and acknowledgement[0].to == [owner.email]
    # The same Message-ID again is stored once and changes nothing.
    again, created = intake.mail_receive(raw=raw, source="test")
    assert not created and again.pk == stored.pk and RefundRequest.objects.count() == 1


def test_a_stranger_is_told_the_same_whether_or_not_the_order_exists(
    customer, django_capture_on_commit_callbacks
):
    _, order, _ = customer
    stranger = UserFactory(email="someone@else.example")
    bodies = []
    for number, message_id in ((order.number, "<a@x>"), ("ORD-2026-999999", "<b@x>")):
        raw = build(
            sender=stranger.email,
            subject=f"Refund request - Order #{number}",
            body="Reason: we no longer need it.",
            message_id=message_id,
        )
        outbox.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            stored, _ = intake.mail_receive(raw=raw, source="test")
        assert stored.status == "triage"
        bodies.append(outbox.outbox[-1].body)
    assert bodies[0] == bodies[1]
    assert order.account.name not in bodies[0] and order.number not in bodies[0]


def test_a_member_without_billing_rights_gets_the_same_answer(customer):
    account, order, _ = customer
    member = MembershipFactory(account=account, role=Membership.Role.MEMBER).user
    stored, _ = intake.mail_receive(raw=ask(order, member), source="test")
    assert stored.status == "triage" and "not an owner or billing admin" in stored.reasons[0]


def test_a_mail_missing_the_order_is_triaged_and_the_sender_told_what(
    customer, django_capture_on_commit_callbacks
):
    _, order, owner = customer
    raw = ask(order, owner, subject="Refund please", body="Reason: the product is broken.")
    with django_capture_on_commit_callbacks(execute=True):
        stored, _ = intake.mail_receive(raw=raw, source="test")
    assert stored.status == "triage"
    assert stored.reasons == ["Missing the order number (for example ORD-2026-000123)."]
    reply = outbox.outbox[-1]
    assert reply.to == [owner.email] and "Missing the order number" in reply.body


def test_a_reply_joins_the_thread_and_restarts_the_clock(customer):
    _, order, owner = customer
    intake.mail_receive(raw=ask(order, owner), source="test")
    request = RefundRequest.objects.get()
    from django.contrib.auth.models import Group

    reviewer = UserFactory(is_staff=True)
    reviewer.groups.add(Group.objects.get(name="Billing reviewer"))
    services.refund_request_ask_info(actor=reviewer, request=request, question="Which card?")
    answer = build(
        sender=owner.email,
        subject=f"Re: Refund request — Order #{order.number}",
        body="The Visa ending 4242.\n\nOn Monday, billing wrote:\n> Which card?",
        message_id="<m2@customer.example>",
        headers={"In-Reply-To": "<m1@customer.example>"},
    )
    stored, _ = intake.mail_receive(raw=answer, source="test")
    request.refresh_from_db()
    assert stored.status == "reply" and stored.thread == request.number
    assert request.state == "in_review"
    assert request.messages.filter(from_staff=False).get().body.startswith("The Visa ending 4242.")


def test_auto_replies_are_recorded_and_never_answered(customer, django_capture_on_commit_callbacks):
    _, order, owner = customer
    raw = ask(order, owner, headers={"Auto-Submitted": "auto-replied"}, message_id="<ooo@x>")
    outbox.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        stored, _ = intake.mail_receive(raw=raw, source="test")
    assert stored.status == "auto" and not outbox.outbox


def test_refused_attachments_are_named_and_the_rest_kept(
    customer, django_capture_on_commit_callbacks
):
    _, order, owner = customer
    raw = ask(
        order,
        owner,
        attach=[
            ("tool.exe", b"MZ\x90\x00binary", "application", "octet-stream"),
            ("receipt.png", b"\x89PNG\r\n\x1a\n" + bytes(32), "image", "png"),
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        stored, _ = intake.mail_receive(raw=raw, source="test")
    request = RefundRequest.objects.get()
    assert [e.name for e in request.evidence.all()] == ["receipt.png"]
    told = [m for m in outbox.outbox if "did not keep" in m.body]
    assert len(told) == 1 and told[0].to == [owner.email] and "tool.exe" in told[0].body
    assert "Attachments not kept: tool.exe is not a PDF" in request.text
    assert stored.status == "request"


def test_a_mail_that_breaks_processing_is_triaged_and_the_next_one_goes_through(
    customer, monkeypatch
):
    _, order, owner = customer

    def boom(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(intake, "_new_request", lambda *a, **k: boom())
    broken, _ = intake.mail_receive(raw=ask(order, owner), source="test")
    assert InboundMail.objects.get(pk=broken.pk).status == "triage"
    assert "could not process" in InboundMail.objects.get(pk=broken.pk).reasons[0]
    monkeypatch.undo()
    fine, _ = intake.mail_receive(raw=ask(order, owner, message_id="<m9@x>"), source="test")
    assert InboundMail.objects.get(pk=fine.pk).status == "request"


def test_staff_complete_a_triaged_mail_into_a_request(customer):
    _, order, owner = customer
    raw = ask(order, owner, subject="Money back?", body="Please refund the plugin, it broke.")
    stored, _ = intake.mail_receive(raw=raw, source="test")
    stored.refresh_from_db()
    assert stored.status == "triage"
    from django.contrib.auth.models import Group

    reviewer = UserFactory(is_staff=True)
    reviewer.groups.add(Group.objects.get(name="Billing reviewer"))
    request = intake.mail_complete(
        actor=reviewer,
        mail=stored,
        order_number=order.number.lower(),
        requester_email=owner.email,
        reason="defective",
    )
    stored.refresh_from_db()
    assert (
        stored.status == "done" and stored.thread == request.number and request.channel == "email"
    )


def test_the_console_completes_a_triaged_mail(client, customer):
    from django.urls import reverse

    from tests.accounts.test_hardening import staff_client

    _, order, owner = customer
    raw = ask(order, owner, subject="Money back?", body="Please refund it, it broke.")
    stored, _ = intake.mail_receive(raw=raw, source="test")
    staff_client(client, group="Billing reviewer")
    queue = client.get(reverse("admin:inbox_inboundmail_changelist") + "?status__exact=triage")
    assert queue.status_code == 200 and "Money back?" in queue.text
    page = client.get(reverse("admin:inbox_inboundmail_change", args=[stored.pk]))
    assert "Complete into a refund request" in page.text
    url = reverse("admin:inbox_inboundmail_complete", args=[stored.pk])
    wrong = client.post(
        url,
        {"order_number": "ORD-1999-000001", "requester_email": owner.email, "reason": "defective"},
    )
    assert wrong.status_code == 200 and "No order ORD-1999-000001" in wrong.text
    done = client.post(
        url, {"order_number": order.number, "requester_email": owner.email, "reason": "defective"}
    )
    request = RefundRequest.objects.get()
    assert done.status_code == 302 and done.url.endswith(f"/refundrequest/{request.pk}/change/")
    stored.refresh_from_db()
    assert stored.status == "done" and stored.resolved_at is not None


def test_a_mail_naming_one_item_of_a_two_item_order_asks_for_that_item_only(
    customer, django_capture_on_commit_callbacks
):
    _, order, owner = customer
    plugin = order.lines.get(product__code="plugin")
    raw = ask(
        order,
        owner,
        body=f"Hello,\n\nPlease refund the plugin on {order.number}: it never worked at "
        "all.\n\nThanks,\nJane",
    )
    with django_capture_on_commit_callbacks(execute=True):
        stored, _ = intake.mail_receive(raw=raw, source="test")
    assert stored.status == "request"
    request = RefundRequest.objects.get(number=stored.thread)
    assert [line.order_line_id for line in request.lines.all()] == [plugin.pk]


def test_the_customers_whole_message_is_kept_as_their_words(
    customer, django_capture_on_commit_callbacks
):
    _, order, owner = customer
    body = (
        f"Hello,\n\nWe bought {order.number} for the spring campaign.\n"
        "The campaign was cancelled by our client last week.\n"
        "We were also charged twice for it, which our bank confirms.\n"
        "Could you refund the order?\n\nBest regards,\nJane Doe\n\n"
        "On Mon, 2 Mar 2026, Billing <billing@vendor.example> wrote:\n> Your receipt"
    )
    with django_capture_on_commit_callbacks(execute=True):
        stored, _ = intake.mail_receive(raw=ask(order, owner, body=body), source="test")
    request = RefundRequest.objects.get(number=stored.thread)
    for sentence in (
        "We bought",
        "The campaign was cancelled by our client last week.",
        "We were also charged twice for it",
        "Could you refund the order?",
    ):
        assert sentence in request.text
    assert "Your receipt" not in request.text and "Best regards" not in request.text
