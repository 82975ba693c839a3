"""Support by email: the contact's new mail opens an incident, replies thread onto it
(once per Message-ID), auto-replies are never answered, anyone else is answered."""

import mailbox
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage

import pytest
from django.contrib.auth.models import Group
from django.core import mail as outbox
from django.core.management import call_command
from django.test import TestCase
from django.urls import reverse

from accounts.models import AuditEvent
from billing.models import Price, Product, Subscription
from support import services
from support.mail import severity_of
from support.mail import support_mail_receive as receive
from support.models import Incident, IncidentMessage
from tests.factories import AccountFactory, MembershipFactory, UserFactory, owner_of
from tests.mailtools import auth_results, trusted_mx  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("trusted_mx")]
TUESDAY = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)  # 14:00 in New York


@pytest.fixture(autouse=True)
def _vendor(settings):
    settings.VENDOR_TIMEZONE = "America/New_York"
    settings.VENDOR_COUNTRY = "US"
    settings.SUPPORT_EMAIL = "support@vendor.example"


@pytest.fixture
def agent():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Support agent"))
    return user


def cloud_account(seats: int, **extra):
    account = AccountFactory(seats_paid=seats, timezone="America/New_York", **extra)
    product = Product.objects.create(code=f"plan-{account.pk}", name="Pro", kind="subscription")
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("29"), scheme="per_seat", interval="month"
    )
    Subscription.objects.create(
        account=account,
        price=price,
        quantity=seats,
        current_period_start=date(2026, 1, 15),
        current_period_end=date(2026, 4, 15),
    )
    return account


def answers():
    """The answers to mails (inbox's, RFC 3834 auto-replied), not the incidents' own mails."""
    return [m for m in outbox.outbox if m.extra_headers.get("Auto-Submitted") == "auto-replied"]


def support_mail_receive(**kwargs):
    """A mail handled as by the fetch command: its answer is sent once committed."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return receive(**kwargs)


def build(*, sender, subject, body, message_id, headers=None):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@vendor.example"
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    message["Authentication-Results"] = auth_results(sender)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()


def new_mail(user, *, subject="Reports page shows an error", message_id="<new@customer.example>"):
    return build(
        sender=f"{user.get_full_name()} <{user.email}>",
        subject=subject,
        body="The weekly report fails with error 500.\n\nThanks,\nJane",
        message_id=message_id,
    )


def test_a_new_mail_from_the_contact_opens_an_incident():
    account = cloud_account(2)
    contact = owner_of(account)
    received = support_mail_receive(raw=new_mail(contact), now=TUESDAY)
    assert received.outcome == "opened"
    incident = Incident.objects.get()
    assert received.incident == incident and incident.account == account
    assert (incident.channel, incident.severity, incident.state) == ("email", "P3", "open")
    assert incident.subject == "Reports page shows an error"
    assert incident.description.startswith("The weekly report fails with error 500.")
    assert incident.opened_by == contact
    assert answers() == []  # the confirmation is the incident's own mail
    assert [incident.number in m.subject for m in outbox.outbox] == [True]
    event = AuditEvent.objects.get(action="support.mail_opened")
    assert event.changes["message_id"] == "new@customer.example"
    assert event.changes["incident"] == incident.number


def test_the_subject_sets_the_severity():
    assert severity_of("[P1] Everything is down") == "P1"
    assert severity_of("p2: invoices fail") == "P2"
    assert severity_of("URGENT: cannot log in") == "P2"
    assert severity_of("Question about P10 reports") == "P3"
    assert severity_of("How do I export?") == "P3"


def test_a_reply_threads_onto_the_incident_and_reopens_a_resolved_one(agent):
    account = cloud_account(2)
    contact = owner_of(account)
    incident = support_mail_receive(raw=new_mail(contact), now=TUESDAY).incident
    services.incident_respond(actor=agent, incident=incident, body="Which browser?", now=TUESDAY)
    services.incident_set_state(actor=agent, incident=incident, state="resolved", now=TUESDAY)
    reply = build(
        sender=contact.email,
        subject=f"Re: [{incident.number}] Reports page shows an error",
        body="It is back since this morning.\n\nOn Tuesday, support wrote:\n> Resolved",
        message_id="<reply-1@customer.example>",
    )
    received = support_mail_receive(raw=reply, now=TUESDAY + timedelta(days=13))
    assert (received.outcome, received.incident) == ("replied", incident)
    incident.refresh_from_db()
    assert (incident.state, incident.reopened) == ("in_progress", 1)
    message = incident.messages.get(from_staff=False)
    assert message.body == "It is back since this morning."
    assert message.author == contact and message.message_id == "reply-1@customer.example"
    # Another member answers the opening mail (In-Reply-To, no tag): it threads too.
    colleague = MembershipFactory(account=account, role="member").user
    second = build(
        sender=colleague.email,
        subject="Re: Reports page shows an error",
        body="Same here.",
        message_id="<reply-2@customer.example>",
        headers={"In-Reply-To": "<new@customer.example>"},
    )
    assert support_mail_receive(raw=second, now=TUESDAY).outcome == "replied"
    assert incident.messages.filter(from_staff=False).count() == 2
    assert Incident.objects.count() == 1 and answers() == []


def test_a_reply_after_the_reopening_window_is_answered(agent):
    account = cloud_account(2)
    contact = owner_of(account)
    incident = support_mail_receive(raw=new_mail(contact), now=TUESDAY).incident
    services.incident_set_state(actor=agent, incident=incident, state="resolved", now=TUESDAY)
    late = build(
        sender=contact.email,
        subject=f"Re: [{incident.number}] Reports page shows an error",
        body="Again.",
        message_id="<late@customer.example>",
    )
    received = support_mail_receive(raw=late, now=TUESDAY + timedelta(days=15))
    assert (received.outcome, received.answer) == ("answered", "refused")
    assert "more than 14 days ago" in answers()[0].body
    assert incident.messages.count() == 0


def test_the_same_message_id_twice_adds_one_message():
    account = cloud_account(2)
    contact = owner_of(account)
    incident = support_mail_receive(raw=new_mail(contact), now=TUESDAY).incident
    reply = build(
        sender=contact.email,
        subject=f"RE: [{incident.number}] Reports page shows an error",
        body="More details.",
        message_id="<twice@customer.example>",
    )
    assert support_mail_receive(raw=reply, now=TUESDAY).outcome == "replied"
    assert support_mail_receive(raw=reply, now=TUESDAY).outcome == "duplicate"
    assert support_mail_receive(raw=new_mail(contact), now=TUESDAY).outcome == "duplicate"
    assert IncidentMessage.objects.filter(message_id="twice@customer.example").count() == 1
    assert Incident.objects.count() == 1


def test_an_auto_reply_is_recorded_and_never_answered():
    account = cloud_account(2)
    contact = owner_of(account)
    auto = build(
        sender=contact.email,
        subject="Out of office",
        body="I am away until Monday.",
        message_id="<ooo@customer.example>",
        headers={"Auto-Submitted": "auto-replied"},
    )
    stranger_bounce = build(
        sender="MAILER-DAEMON@else.example",
        subject="Undeliverable: Re: your incident",
        body="Delivery failed.",
        message_id="<bounce@else.example>",
    )
    assert support_mail_receive(raw=auto, now=TUESDAY).outcome == "auto"
    assert support_mail_receive(raw=stranger_bounce, now=TUESDAY).outcome == "auto"
    assert answers() == [] and not Incident.objects.exists()
    assert AuditEvent.objects.filter(action="support.mail_auto").count() == 2


def test_a_member_who_is_not_the_contact_is_told_who_is():
    account = cloud_account(2, name="Acme")
    member = MembershipFactory(account=account, role="member").user
    received = support_mail_receive(raw=new_mail(member), now=TUESDAY)
    assert (received.outcome, received.answer) == ("answered", "contact")
    assert not Incident.objects.exists()
    (answer,) = answers()
    assert answer.to == [member.email] and answer.subject == "Re: Reports page shows an error"
    contact_name = owner_of(account).get_full_name()
    assert f"Acme go through its designated support contact, {contact_name}" in answer.body
    assert owner_of(account).email not in answer.body
    assert answer.extra_headers["In-Reply-To"] == "<new@customer.example>"
    assert answer.extra_headers["Auto-Submitted"] == "auto-replied"


def test_a_stranger_gets_an_answer_that_reveals_nothing():
    account = cloud_account(2, name="Acme")
    incident = support_mail_receive(raw=new_mail(owner_of(account)), now=TUESDAY).incident
    UserFactory(email="known@else.example")  # a user of no account
    for n, sender in enumerate(["nobody@else.example", "known@else.example"]):
        received = support_mail_receive(
            raw=build(
                sender=sender,
                subject=f"Re: [{incident.number}] Reports page shows an error",
                body="Let me in.",
                message_id=f"<stranger-{n}@else.example>",
            ),
            now=TUESDAY,
        )
        assert (received.outcome, received.answer) == ("answered", "generic")
    first, second = answers()
    assert first.body == second.body  # a user of no account learns as little as a stranger
    for answer in (first, second):
        assert "Acme" not in answer.body and owner_of(account).get_full_name() not in answer.body
        assert "designated support contact" in answer.body
    assert incident.messages.count() == 0


def test_refusals_are_answered_with_their_message(settings):
    product = Product.objects.create(code="extra", name="Extra", kind="support_incident")
    Price.objects.create(product=product, currency="USD", amount=Decimal("150"), interval="one_off")
    account = cloud_account(1)
    contact = owner_of(account)
    support_mail_receive(raw=new_mail(contact), now=TUESDAY)
    received = support_mail_receive(
        raw=new_mail(contact, message_id="<second@customer.example>"), now=TUESDAY
    )
    assert (received.outcome, received.answer) == ("answered", "refused")
    assert "150.00 USD" in answers()[-1].body
    assert "cannot be confirmed by mail" in answers()[-1].body
    lapsed = cloud_account(2)
    Subscription.objects.filter(account=lapsed).update(status="lapsed")
    support_mail_receive(
        raw=new_mail(owner_of(lapsed), message_id="<lapsed@customer.example>"), now=TUESDAY
    )
    assert "renew it under Account Settings > Billing" in answers()[-1].body
    assert Incident.objects.count() == 1


def test_a_bad_mail_never_raises():
    assert support_mail_receive(raw=b"\x00\xff garbage", now=TUESDAY).outcome == "ignored"
    assert support_mail_receive(raw=None, now=TUESDAY).outcome == "failed"


def test_fetch_from_a_maildir_counts_exactly_and_empties_it(tmp_path, capsys):
    account = cloud_account(2)
    contact = owner_of(account)
    member = MembershipFactory(account=account, role="member").user
    opening = new_mail(contact, message_id="<open@customer.example>")
    mails = [
        opening,
        build(
            sender=contact.email,
            subject="Re: Reports page shows an error",
            body="A screenshot follows.",
            message_id="<follow@customer.example>",
            headers={"In-Reply-To": "<open@customer.example>"},
        ),
        new_mail(member, message_id="<member@customer.example>"),
        build(
            sender=contact.email,
            subject="Automatic reply: Reports",
            body="Away.",
            message_id="<away@customer.example>",
        ),
        opening,  # delivered twice
    ]
    box = mailbox.Maildir(tmp_path / "support", create=True)
    box.close()
    for i, raw in enumerate(mails):
        folder = "cur" if i % 2 else "new"
        name = f"{1_770_000_000 + i}.M{i}P1Q{i}.test" + (":2,S" if folder == "cur" else "")
        (tmp_path / "support" / folder / name).write_bytes(raw)
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("support_mail", "fetch", "--maildir", str(tmp_path / "support"))
    assert "4 handled, 1 duplicates, 0 failed" in capsys.readouterr().out
    assert os.listdir(tmp_path / "support" / "new") == []
    assert os.listdir(tmp_path / "support" / "cur") == []
    incident = Incident.objects.get()
    assert incident.messages.get().body == "A screenshot follows."
    assert [m.to for m in answers()] == [[member.email]]


def test_mail_attachments_are_kept_with_the_evidence_checks(client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    account = cloud_account(2)
    contact = owner_of(account)
    message = EmailMessage()
    message["From"] = contact.email
    message["To"] = "support@vendor.example"
    message["Subject"] = "Reports page shows an error"
    message["Message-ID"] = "<files@customer.example>"
    message["Authentication-Results"] = auth_results(contact.email)
    message.set_content("Screenshot and log attached.")
    message.add_attachment(
        b"\x89PNG\r\n\x1a\n-image", maintype="image", subtype="png", filename="screen.png"
    )
    message.add_attachment(
        b"MZ\x90\x00 a program", maintype="application", subtype="octet-stream", filename="fix.exe"
    )
    # The declared type is a PDF, the content is not: the content decides.
    message.add_attachment(
        b"MZ\x90\x00 also a program", maintype="application", subtype="pdf", filename="log.pdf"
    )
    incident = support_mail_receive(raw=message.as_bytes(), now=TUESDAY).incident
    [kept] = incident.attachments.all()
    assert (kept.name, kept.content_type, kept.message) == ("screen.png", "image/png", None)
    assert "fix.exe is not a PDF, PNG, JPEG, GIF or plain-text file" in incident.description
    assert "log.pdf is not a PDF" in incident.description
    # The account's members download it; another account's member gets a 404.
    url = reverse("incident_attachment", args=[incident.number, kept.pk])
    client.force_login(contact)
    got = client.get(url)
    assert got.status_code == 200 and b"".join(got.streaming_content).startswith(b"\x89PNG")
    assert got["Content-Disposition"].startswith("attachment")
    client.force_login(owner_of(cloud_account(2)))
    assert client.get(url).status_code == 404
