"""A support mail's attachments are read and checked once, on the mail path as on the
web's: mail_uploads hands its checked files to the services, which do not check again."""

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts import uploads
from support import services
from support.mail import support_mail_receive
from tests.factories import owner_of
from tests.mailtools import auth_results, trusted_mx  # noqa: F401  (a fixture)
from tests.support.test_mail import cloud_account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("trusted_mx")]
TUESDAY = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n-image"
PDF = b"%PDF-1.4 a log"


@pytest.fixture(autouse=True)
def _vendor(settings, tmp_path):
    settings.VENDOR_TIMEZONE = "America/New_York"
    settings.VENDOR_COUNTRY = "US"
    settings.SUPPORT_EMAIL = "support@vendor.example"
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.fixture
def sniffed(monkeypatch):
    """The heads of the files whose type was read from their content."""
    heads = []
    sniff = uploads.sniff_type

    def counting(head):
        heads.append(head)
        return sniff(head)

    monkeypatch.setattr(uploads, "sniff_type", counting)
    return heads


def mail(user, *, subject, message_id, files):
    message = EmailMessage()
    message["From"] = user.email
    message["To"] = "support@vendor.example"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Authentication-Results"] = auth_results(user.email)
    message.set_content("Files attached.")
    for name, content, maintype, subtype in files:
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


def test_a_mail_opening_an_incident_reads_each_attachment_once(sniffed):
    contact = owner_of(cloud_account(2))
    raw = mail(
        contact,
        subject="Reports page shows an error",
        message_id="<open@customer.example>",
        files=[
            ("screen.png", PNG, "image", "png"),
            ("log.pdf", PDF, "application", "pdf"),
            ("fix.exe", b"MZ\x90\x00 a program", "application", "octet-stream"),
        ],
    )
    incident = support_mail_receive(raw=raw, now=TUESDAY).incident
    assert sorted(a.name for a in incident.attachments.all()) == ["log.pdf", "screen.png"]
    assert sorted(sniffed) == sorted([PNG, PDF, b"MZ\x90\x00 a program"])


def test_a_reply_by_mail_reads_each_attachment_once(sniffed):
    contact = owner_of(cloud_account(2))
    incident = support_mail_receive(
        raw=mail(contact, subject="Broken export", message_id="<a@customer.example>", files=[]),
        now=TUESDAY,
    ).incident
    reply = mail(
        contact,
        subject=f"Re: [{incident.number}] Broken export",
        message_id="<b@customer.example>",
        files=[("screen.png", PNG, "image", "png")],
    )
    outcome = support_mail_receive(raw=reply, now=TUESDAY)
    assert outcome.outcome == "replied"
    assert [a.name for a in incident.attachments.all()] == ["screen.png"]
    assert sniffed == [PNG]


def test_a_file_uploaded_on_the_web_is_read_once(sniffed):
    account = cloud_account(2)
    incident = services.incident_open(
        actor=owner_of(account),
        account=account,
        subject="Broken export",
        description="It fails.",
        severity="P3",
        channel="web",
        now=TUESDAY,
    )
    services.incident_reply(
        actor=owner_of(account),
        incident=incident,
        body="A screenshot.",
        attachments=[SimpleUploadedFile("screen.png", PNG)],
        now=TUESDAY,
    )
    assert [a.name for a in incident.attachments.all()] == ["screen.png"]
    assert sniffed == [PNG]
