"""inbox.proof: a From header proves nothing; a trusted server's verdict or the thread's
reply token does."""

from email.message import EmailMessage

import pytest

from inbox import proof
from inbox.parse import read
from tests.mailtools import AUTHSERV


def mail(*auth_results, sender="Jane <jane@acme.example>", to="billing@vendor.example"):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "Refund request"
    for value in auth_results:
        message["Authentication-Results"] = value
    message.set_content("Hello")
    return read(message.as_bytes())


@pytest.fixture(autouse=True)
def _trusted(settings):
    settings.MAIL_TRUSTED_AUTHSERV_IDS = [AUTHSERV]


def test_dmarc_pass_from_the_trusted_server_proves_the_sender():
    assert proof.server_verdict(mail(f"{AUTHSERV}; dmarc=pass header.from=acme.example")) == "dmarc"


@pytest.mark.parametrize(
    "signer, expected",
    [
        ("acme.example", "dkim"),
        ("mail.acme.example", "dkim"),  # relaxed alignment
        ("attacker.example", ""),
        ("example", ""),  # a bare suffix aligns with nothing
    ],
)
def test_dkim_pass_proves_only_when_aligned_with_the_from_domain(signer, expected):
    header = f"{AUTHSERV}; dkim=pass header.d={signer} header.s=s1; dmarc=none"
    assert proof.server_verdict(mail(header)) == expected


@pytest.mark.parametrize(
    "header",
    [
        "mx.attacker.example; dmarc=pass header.from=acme.example",  # not a trusted server
        f"{AUTHSERV}; dmarc=fail header.from=acme.example",
        f"{AUTHSERV}; dmarc=pass header.from=other.example",  # about another domain
        f"{AUTHSERV}; spf=pass smtp.mailfrom=acme.example",  # SPF alone proves no From
        "garbage ;;; not a header",
    ],
)
def test_other_verdicts_prove_nothing(header):
    assert proof.server_verdict(mail(header)) == ""


def test_only_the_topmost_header_of_the_trusted_server_counts():
    """A sender can forge a header with the trusted id below the server's own."""
    top = f"{AUTHSERV}; dmarc=fail header.from=acme.example"
    forged = f"{AUTHSERV}; dmarc=pass header.from=acme.example"
    assert proof.server_verdict(mail(top, forged)) == ""


def test_nothing_is_trusted_until_a_server_is_configured(settings):
    settings.MAIL_TRUSTED_AUTHSERV_IDS = []
    assert proof.server_verdict(mail(f"{AUTHSERV}; dmarc=pass header.from=acme.example")) == ""


def test_a_reply_token_proves_its_own_thread_only():
    address = proof.reply_address("Billing <billing@vendor.example>", "RR-2026-000004")
    assert address.startswith("Billing <billing+rr-2026-000004.")
    to_it = mail(to=address)
    assert proof.token_proves(to_it, "RR-2026-000004")
    assert proof.tagged_thread(to_it) == "RR-2026-000004"
    assert not proof.token_proves(to_it, "RR-2026-000005")
    # Another thread's number with this thread's token proves nothing.
    token = proof.token_for("RR-2026-000004")
    forged = mail(to=f"billing+rr-2026-000005.{token}@vendor.example")
    assert not proof.token_proves(forged, "RR-2026-000005") and proof.tagged_thread(forged) is None


def test_the_providers_verdicts():
    assert (
        proof.provider_verdict(
            "amazon_ses", {"receipt": {"dmarcVerdict": {"status": "PASS"}}}, "acme.example"
        )
        == "provider"
    )
    assert (
        proof.provider_verdict(
            "amazon_ses", {"receipt": {"dmarcVerdict": {"status": "FAIL"}}}, "acme.example"
        )
        == ""
    )
    assert proof.provider_verdict("sendgrid", {"dkim": "{@acme.example : pass}"}, "acme.example")
    assert not proof.provider_verdict(
        "sendgrid", {"dkim": "{@evil.example : pass}"}, "acme.example"
    )
    assert not proof.provider_verdict("postmark", {}, "acme.example")
    assert not proof.provider_verdict("amazon_ses", "not a dict", "acme.example")
