"""The forged mails of issue 14: a From header alone never acts for a customer.

An unproven mail that would file a refund request waits for the account to confirm it
(a link mailed to the user's own address); an unproven reply is held for staff; a reply
to the thread's own reply address, or a mail the trusted server vouches for, acts."""

import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail as outbox
from django.test import TestCase
from django.urls import reverse

from inbox import proof, services
from inbox.models import InboundMail
from refunds import services as refund_services
from refunds.models import RefundMessage, RefundRequest
from support.mail import support_mail_receive
from support.models import Incident
from tests.factories import MembershipFactory, UserFactory, owner_of
from tests.mailtools import auth_results, trusted_mx  # noqa: F401  (a fixture)
from tests.mailtools import build as _build
from tests.support.test_mail import TUESDAY, cloud_account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("trusted_mx")]


def build(**kwargs):
    """A mail no trusted server vouches for, unless its headers say so."""
    return _build(proven=False, **kwargs)


def receive(raw, mailbox="refunds"):
    with TestCase.captureOnCommitCallbacks(execute=True):
        stored, _ = services.mail_receive(raw=raw, source="test", mailbox=mailbox)
    return stored


@pytest.fixture
def customer(paid_order, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    account, order = paid_order()
    return account, order, owner_of(account)


def forged_request(order, owner, **extra):
    return build(
        sender=f"{owner.get_full_name()} <{owner.email}>",
        subject=f"Refund request — Order #{order.number}",
        body=f"Order: {order.number}\nReason: we were charged twice for it.\n",
        message_id="<forged@attacker.example>",
        **extra,
    )


def confirm_link(message) -> str:
    return re.search(r"https?://\S+/mail/confirm/\S+/", message.body).group(0)


def test_a_forged_from_files_no_request_until_the_owner_confirms(customer, client):
    account, order, owner = customer
    stored = receive(forged_request(order, owner))
    assert stored.status == "confirm" and stored.proof == ""
    assert RefundRequest.objects.count() == 0
    # The link goes to the owner's own address, never to a Reply-To the sender chose.
    [link_mail] = outbox.outbox
    assert link_mail.to == [owner.email] and "nothing has been done" in link_mail.body
    path = confirm_link(link_mail).split("127.0.0.1:8000", 1)[-1]
    # Signed out: sign in first. Another user of the portal: 404.
    assert client.get(path).status_code == 302
    client.force_login(UserFactory())
    assert client.get(path).status_code == 404
    assert client.post(path).status_code == 404
    client.force_login(owner)
    page = client.get(path)
    assert page.status_code == 200 and f"file a refund request for {order.number}" in page.text
    done = client.post(path)
    request = RefundRequest.objects.get()
    assert done.status_code == 302 and done.url == reverse(
        "refund_request_detail", args=[request.number]
    )
    assert (request.channel, request.requested_by, request.account) == ("email", owner, account)
    stored.refresh_from_db()
    assert stored.status == "request" and stored.thread == request.number
    assert stored.reasons == [f"Confirmed by {owner.email} through the link sent to them."]
    # The link works once.
    client.post(path)
    assert RefundRequest.objects.count() == 1


def test_a_verdict_from_an_untrusted_server_is_ignored(customer):
    _, order, owner = customer
    header = auth_results(owner.email, authserv="mx.attacker.example")
    stored = receive(forged_request(order, owner, headers={"Authentication-Results": header}))
    assert stored.status == "confirm" and RefundRequest.objects.count() == 0


def test_the_trusted_servers_dmarc_pass_files_the_request_at_once(customer):
    _, order, owner = customer
    header = auth_results(owner.email)
    stored = receive(forged_request(order, owner, headers={"Authentication-Results": header}))
    assert (stored.status, stored.proof) == ("request", "dmarc")
    assert RefundRequest.objects.get().number == stored.thread


@pytest.fixture
def open_request(customer):
    account, order, owner = customer
    request = refund_services.refund_request_submit(
        actor=owner,
        account=account,
        line_ids=[line.pk for line in order.lines.all()],
        reason="duplicate_charge",
        payout_method="original",
        text="Charged twice.",
    )
    outbox.outbox.clear()
    return request, owner


def reply(request, owner, *, to="billing@vendor.example", message_id="<re@x.example>"):
    return build(
        sender=owner.email,
        subject=f"Re: {request.number}",
        body="The Visa ending 4242.",
        to=to,
        message_id=message_id,
    )


def test_a_forged_reply_is_held_for_staff_who_accept_or_discard_it(open_request, billing_staff):
    request, owner = open_request
    held = receive(reply(request, owner))
    assert (held.status, held.thread) == ("held", request.number)
    assert not RefundMessage.objects.filter(request=request, from_staff=False).exists()
    # The sender is told, and the answer names no account or request detail.
    [answer] = outbox.outbox
    assert answer.to == [owner.email] and "could not confirm" in answer.body
    assert request.account.name not in answer.body
    services.mail_accept(actor=billing_staff, mail=held)
    held.refresh_from_db()
    assert held.status == "reply" and held.resolved_by == billing_staff
    message = RefundMessage.objects.get(request=request, from_staff=False)
    assert message.body == "The Visa ending 4242." and message.author == owner
    second = receive(reply(request, owner, message_id="<re2@x.example>"))
    assert services.mail_dismiss(actor=billing_staff, mail=second)
    second.refresh_from_db()
    assert second.status == "dismissed"
    assert RefundMessage.objects.filter(request=request, from_staff=False).count() == 1


def test_the_console_accepts_held_replies(open_request, client):
    from tests.accounts.test_hardening import staff_client

    request, owner = open_request
    held = receive(reply(request, owner))
    staff_client(client, group="Billing reviewer")
    queue = client.get(reverse("admin:inbox_inboundmail_changelist") + "?status__exact=held")
    assert queue.status_code == 200 and request.number in queue.text
    done = client.post(
        reverse("admin:inbox_inboundmail_changelist"),
        {"action": "accept", "_selected_action": [held.pk]},
    )
    assert done.status_code == 302
    held.refresh_from_db()
    assert held.status == "reply"


def test_a_reply_to_the_threads_own_address_is_proven_for_that_thread(open_request, settings):
    request, owner = open_request
    address = proof.reply_address(settings.VENDOR_BILLING_EMAIL, request.number)
    stored = receive(reply(request, owner, to=address))
    assert (stored.status, stored.proof) == ("reply", "token")
    assert RefundMessage.objects.get(request=request, from_staff=False).author == owner


def test_the_portals_mails_carry_the_threads_reply_address(open_request, settings):
    request, _ = open_request
    refund_services.refund_request_message(actor=request.requested_by, request=request, body="x")
    from refunds.emails import send_refund_update

    send_refund_update(request=request, event="received")
    [sent] = outbox.outbox
    assert sent.reply_to == [proof.reply_address(settings.VENDOR_BILLING_EMAIL, request.number)]


def test_a_made_up_token_proves_nothing(open_request):
    request, owner = open_request
    made_up = f"billing+{request.number.lower()}.{'a' * 24}@vendor.example"
    stored = receive(reply(request, owner, to=made_up))
    assert (stored.status, stored.thread) == ("held", request.number)


# support ---------------------------------------------------------------------------------


def support_mail(user, *, subject="Reports page fails", message_id="<s1@x.example>", **extra):
    return build(
        sender=user.email,
        to="support@vendor.example",
        subject=subject,
        body="The weekly report fails.",
        message_id=message_id,
        **extra,
    )


@pytest.fixture
def support_agent():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Support agent"))
    return user


def test_a_forged_mail_from_the_contact_opens_an_incident_only_once_confirmed(client, time_machine):
    time_machine.move_to(TUESDAY, tick=False)
    account = cloud_account(2)
    contact = owner_of(account)
    with TestCase.captureOnCommitCallbacks(execute=True):
        received = support_mail_receive(raw=support_mail(contact))
    assert received.outcome == "confirm" and Incident.objects.count() == 0
    [link_mail] = outbox.outbox
    assert link_mail.to == [contact.email]
    path = confirm_link(link_mail).split("127.0.0.1:8000", 1)[-1]
    member = MembershipFactory(account=account, role="member").user
    client.force_login(member)
    assert client.post(path).status_code == 404
    client.force_login(contact)
    done = client.post(path)
    incident = Incident.objects.get()
    assert done.url == reverse("incident_detail", args=[incident.number])
    assert (incident.channel, incident.opened_by) == ("email", contact)


def test_a_forged_reply_on_an_incident_is_held(support_agent, time_machine):
    time_machine.move_to(TUESDAY, tick=False)
    account = cloud_account(2)
    contact = owner_of(account)
    proven = {"Authentication-Results": auth_results(contact.email)}
    with TestCase.captureOnCommitCallbacks(execute=True):
        incident = support_mail_receive(raw=support_mail(contact, headers=proven)).incident
    forged = support_mail(
        contact, subject=f"Re: [{incident.number}] Reports", message_id="<forged@x.example>"
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        received = support_mail_receive(raw=forged)
    assert received.outcome == "held" and incident.messages.count() == 0
    held = InboundMail.objects.get(message_id="forged@x.example")
    services.mail_accept(actor=support_agent, mail=held)
    assert incident.messages.get().author == contact


def test_an_unconfirmed_mail_is_set_aside_when_its_link_expires(customer, client):
    from datetime import timedelta

    from django.utils import timezone

    _, order, owner = customer
    stored = receive(forged_request(order, owner))
    path = confirm_link(outbox.outbox[0]).split("127.0.0.1:8000", 1)[-1]
    later = timezone.now() + timedelta(days=15)
    assert services.mail_confirm_expire(later - timedelta(days=2)) == 0
    assert services.mail_confirm_expire(later) == 1
    stored.refresh_from_db()
    assert stored.status == "dismissed"
    client.force_login(owner)
    assert "nothing more to do" in client.get(path).text
    client.post(path)
    assert RefundRequest.objects.count() == 0


def test_a_reply_to_the_incidents_own_address_is_posted(time_machine, settings):
    time_machine.move_to(TUESDAY, tick=False)
    account = cloud_account(2)
    contact = owner_of(account)
    proven = {"Authentication-Results": auth_results(contact.email)}
    with TestCase.captureOnCommitCallbacks(execute=True):
        incident = support_mail_receive(raw=support_mail(contact, headers=proven)).incident
    # The incident's own mail replies to its token address...
    [sent] = [m for m in outbox.outbox if incident.number in m.subject]
    address = proof.reply_address(settings.SUPPORT_EMAIL, incident.number)
    assert sent.reply_to == [address]
    # ...and a reply sent there is proven without any server verdict.
    reply_mail = support_mail(
        contact, subject="Re: Reports", message_id="<tok@x.example>", headers={}
    ).replace(b"To: support@vendor.example", f"To: {address}".encode())
    with TestCase.captureOnCommitCallbacks(execute=True):
        received = support_mail_receive(raw=reply_mail)
    assert (received.outcome, received.incident) == ("replied", incident)
    assert InboundMail.objects.get(message_id="tok@x.example").proof == "token"
