"""Is a mail's sender proven? A From header proves nothing; a mail acts for a customer
only when one of these holds (issue 14):

- the receiving server's verdict: the topmost Authentication-Results header (RFC 8601)
  whose authserv-id is in MAIL_TRUSTED_AUTHSERV_IDS says DMARC pass for the From domain,
  or DKIM pass with a signing domain aligned with it (relaxed alignment: the same domain
  or one a subdomain of the other). Headers from any other authserv-id are ignored, and
  so are lower ones with a trusted id: the receiving server adds its own on top, and it
  should remove any a sender forged with its id (Postfix/OpenDMARC, Exim and the like do);
- the provider's own verdict on the anymail inbound path (provider_verdict);
- the thread's own secret: the portal's mails about a request or incident carry a reply
  address with a token (billing+rr-2026-000004.TOKEN@...), and a reply delivered to it is
  proven for that thread only (token_proves).
"""

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Iterable
from email.utils import parseaddr

import authres
from django.conf import settings

from .parse import MailMessage

logger = logging.getLogger(__name__)

DMARC, DKIM, TOKEN, PROVIDER = "dmarc", "dkim", "token", "provider"


def _aligned(signer: str, from_domain: str) -> bool:
    signer, from_domain = signer.lower().strip("."), from_domain.lower().strip(".")
    if not signer or not from_domain:
        return False
    if signer == from_domain:
        return True
    shorter, longer = sorted((signer, from_domain), key=len)
    return "." in shorter and longer.endswith("." + shorter)


def server_verdict(message: MailMessage, trusted: Iterable[str] | None = None) -> str:
    """DMARC or DKIM when the trusted receiving server vouches for the From domain, else ""."""
    trusted = {t.strip().lower() for t in (trusted or settings.MAIL_TRUSTED_AUTHSERV_IDS) if t}
    from_domain = (message.from_domain or "").lower()
    if not trusted or not from_domain:
        return ""
    for value in message.authentication_results:
        try:
            header = authres.AuthenticationResultsHeader.parse_value(value)
        except Exception:  # an unreadable header vouches for nothing
            logger.info("Unreadable Authentication-Results header ignored: %.200s", value)
            continue
        if (header.authserv_id or "").lower() not in trusted:
            continue
        # The topmost header of a trusted server decides; lower ones may be forged.
        dkim = False
        for result in header.results:
            props = {(p.type, p.name): (p.value or "").lower() for p in result.properties}
            outcome = (result.result or "").lower()
            if (
                result.method == "dmarc"
                and outcome == "pass"
                and props.get(("header", "from"), from_domain) == from_domain
            ):
                return DMARC
            if result.method == "dkim" and outcome == "pass":
                signer = (
                    props.get(("header", "d")) or props.get(("header", "i"), "").rpartition("@")[2]
                )
                dkim = dkim or _aligned(signer, from_domain)
        return DKIM if dkim else ""
    return ""


def provider_verdict(esp_name: str, esp_event, from_domain: str | None) -> str:
    """What an inbound provider says of the sender, where its payload says it: Amazon SES
    (receipt.dmarcVerdict / dkimVerdict) and SendGrid (the dkim field, per domain)."""
    if not from_domain:
        return ""
    try:
        if esp_name.lower() in ("amazon_ses", "amazonses"):
            receipt = (esp_event or {}).get("receipt") or {}
            if (receipt.get("dmarcVerdict") or {}).get("status", "").upper() == "PASS":
                return PROVIDER
        elif esp_name.lower() == "sendgrid":
            fields = getattr(esp_event, "POST", esp_event) or {}  # SendGrid posts a form
            dkim = str(fields.get("dkim") or "")
            for domain, verdict in re.findall(r"@([\w.-]+)\s*:\s*(\w+)", dkim):
                if verdict.lower() == "pass" and _aligned(domain, from_domain):
                    return PROVIDER
    except (AttributeError, TypeError):  # a payload of another shape vouches for nothing
        return ""
    return ""


# --- reply tokens ---------------------------------------------------------------------


def token_for(thread: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"inbox-reply:{thread.upper()}".encode(), hashlib.sha256
    ).digest()
    return base64.b32encode(digest[:15]).decode().lower()


def reply_address(address: str, thread: str) -> str:
    """billing@vendor.example -> billing+rr-2026-000004.TOKEN@vendor.example."""
    name, email = parseaddr(address)
    local, _, domain = email.partition("@")
    tagged = f"{local.split('+')[0]}+{thread.lower()}.{token_for(thread)}@{domain}"
    return f"{name} <{tagged}>" if name else tagged


_TAG_RX = re.compile(r"\+([a-z]{2,4}-\d{4}-\d{6,})\.([a-z2-7]{24})@", re.I)


def token_proves(message: MailMessage, thread: str) -> bool:
    """Was the mail delivered to the thread's own reply address?"""
    expected = token_for(thread)
    for address in message.recipients:
        match = _TAG_RX.search(address)
        if (
            match
            and match.group(1).upper() == thread.upper()
            and hmac.compare_digest(match.group(2).lower(), expected)
        ):
            return True
    return False


def tagged_thread(message: MailMessage) -> str | None:
    """The thread a mail was sent to by its reply address, when its token is right."""
    for address in message.recipients:
        match = _TAG_RX.search(address)
        if match and token_proves(message, match.group(1)):
            return match.group(1).upper()
    return None
