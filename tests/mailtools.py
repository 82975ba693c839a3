"""Mail for the intake tests: a receiving server the tests trust, and its verdict."""

from email.utils import parseaddr

import pytest

AUTHSERV = "mx.portal.test"


def auth_results(sender: str, *, result: str = "pass", authserv: str = AUTHSERV) -> str:
    """The Authentication-Results header a trusted receiving server adds: DMARC pass for
    the From domain of `sender`."""
    domain = parseaddr(sender)[1].rpartition("@")[2]
    return f"{authserv}; spf=pass smtp.mailfrom={domain}; dmarc={result} header.from={domain}"


@pytest.fixture
def trusted_mx(settings):
    settings.MAIL_TRUSTED_AUTHSERV_IDS = [AUTHSERV]
    return AUTHSERV


def build(
    *,
    sender: str,
    subject: str,
    body: str,
    to: str = "billing@vendor.example",
    message_id: str | None = "<m1@customer.example>",
    headers: dict | None = None,
    attach=(),
    proven: bool = True,
) -> bytes:
    """A mail as a customer's client sends it; `proven` adds the trusted server's DMARC
    pass for the sender's domain (an explicit Authentication-Results in `headers` wins)."""
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    headers = dict(headers or {})
    if proven and "Authentication-Results" not in headers:
        headers["Authentication-Results"] = auth_results(sender)
    for name, value in headers.items():
        message[name] = value
    message.set_content(body)
    for name, content, maintype, subtype in attach:
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()
