"""The anymail inbound webhook, through Postmark's inbound JSON: with the secret a mail
is stored and processed; without it (or with a wrong one) 400 and nothing stored."""

import base64
import json

import pytest
from anymail.exceptions import AnymailInsecureWebhookWarning
from django.core import mail as outbox
from django.test import Client
from django.urls import reverse

from inbox import services
from inbox import webhook as _webhook  # noqa: F401  (connects the receiver)
from inbox.models import InboundMail
from refunds.models import RefundRequest
from tests.factories import owner_of
from tests.mailtools import auth_results, trusted_mx  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("trusted_mx")]

SECRET = "postmark:Kq9vX2mRr7"
PDF = b"%PDF-1.4 bank statement"


@pytest.fixture
def customer(paid_order, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    account, order = paid_order()
    return order, owner_of(account)


def postmark_inbound(order, owner, *, message_id="<hook@customer.example>"):
    """Postmark's inbound webhook JSON (without RawEmail, as Postmark posts by default)."""
    name = owner.get_full_name()
    return {
        "FromName": name,
        "From": owner.email,
        "FromFull": {"Email": owner.email, "Name": name, "MailboxHash": ""},
        "To": "billing@vendor.example",
        "ToFull": [{"Email": "billing@vendor.example", "Name": "", "MailboxHash": ""}],
        "CcFull": [],
        "BccFull": [],
        "OriginalRecipient": "billing@vendor.example",
        "Subject": f"Refund request — Order #{order.number}",
        "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
        "ReplyTo": "",
        "MailboxHash": "",
        "Date": "Mon, 2 Mar 2026 10:00:00 -0500",
        "TextBody": f"Name: {name}\nOrder: {order.number}\n"
        "Paid on 2 March 2026, $149.00 by Visa.\nReason: we were charged twice for it.\n",
        "HtmlBody": "",
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": "Return-Path", "Value": f"<{owner.email}>"},
            {"Name": "Message-ID", "Value": message_id},
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "Authentication-Results", "Value": auth_results(owner.email)},
        ],
        "Attachments": [
            {
                "Name": "statement.pdf",
                "Content": base64.b64encode(PDF).decode(),
                "ContentType": "application/pdf",
                "ContentLength": len(PDF),
            }
        ],
    }


def post(payload, *, auth=SECRET, client=None):
    headers = {}
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return (client or Client()).post(
        reverse("anymail:postmark_inbound_webhook"),
        data=json.dumps(payload),
        content_type="application/json",
        **headers,
    )


def test_a_mail_posted_with_the_secret_is_stored_and_becomes_a_request(
    customer, django_capture_on_commit_callbacks
):
    order, owner = customer
    with django_capture_on_commit_callbacks(execute=True):
        response = post(postmark_inbound(order, owner))
    assert response.status_code == 200
    stored = InboundMail.objects.get()
    assert (stored.source, stored.message_id, stored.sender, stored.status) == (
        "webhook",
        "hook@customer.example",
        owner.email,
        "request",
    )
    request = RefundRequest.objects.get(number=stored.thread)
    assert request.channel == "email" and request.evidence.get().name == "statement.pdf"
    assert b"Refund request" in stored.raw.open("rb").read()
    assert any(request.number in m.subject for m in outbox.outbox)  # acknowledged
    # The provider posts it again: stored once, answered once.
    assert post(postmark_inbound(order, owner)).status_code == 200
    assert InboundMail.objects.count() == 1 and RefundRequest.objects.count() == 1


def test_the_raw_mail_is_kept_when_the_provider_sends_it(customer):
    order, owner = customer
    raw = (
        f"From: {owner.email}\r\nTo: billing@vendor.example\r\n"
        f"Subject: Refund request - Order #{order.number}\r\n"
        f"Authentication-Results: {auth_results(owner.email)}\r\n"
        "Message-ID: <raw@customer.example>\r\nX-Custom: kept\r\n\r\n"
        f"Order: {order.number}\r\nReason: the plugin does not work.\r\n"
    )
    payload = postmark_inbound(order, owner) | {"RawEmail": raw}
    assert post(payload).status_code == 200
    stored = InboundMail.objects.get()
    assert stored.message_id == "raw@customer.example" and stored.status == "request"
    assert b"X-Custom: kept" in stored.raw.open("rb").read()


@pytest.mark.parametrize(
    "auth",
    [None, "postmark:wrong", "someone:Kq9vX2mRr7", ""],
    ids=["missing", "wrong", "user", "empty"],
)
def test_a_missing_or_wrong_secret_answers_400_and_stores_nothing(customer, auth):
    order, owner = customer
    response = post(postmark_inbound(order, owner), auth=auth)
    assert response.status_code == 400
    assert not InboundMail.objects.exists() and not RefundRequest.objects.exists()


def test_without_a_secret_configured_every_post_is_refused(customer, settings):
    order, owner = customer
    settings.ANYMAIL = {}
    with pytest.warns(AnymailInsecureWebhookWarning):
        response = post(postmark_inbound(order, owner), auth=None)
    assert response.status_code == 400 and not InboundMail.objects.exists()


def test_a_mail_that_cannot_be_stored_answers_500_so_the_provider_retries(customer, monkeypatch):
    order, owner = customer

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "mail_receive", broken)
    response = post(postmark_inbound(order, owner), client=Client(raise_request_exception=False))
    assert response.status_code == 500 and not InboundMail.objects.exists()
