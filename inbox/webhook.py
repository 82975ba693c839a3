"""The anymail inbound webhook (/anymail/<esp>/inbound/, the configured providers only).

Anymail checks ANYMAIL["WEBHOOK_SECRET"] (HTTP basic auth, "user:password") before
sending its `inbound` signal, and answers 400 to a missing or wrong one. Without a
secret configured anymail would take any post: this receiver then refuses (400 as
well) rather than store mail nobody vouched for. A mail that cannot be stored raises,
so the provider gets a 500 and delivers it again later.

The mailbox is the one it was sent to: the support address (SUPPORT_EMAIL, with or
without a +tag) is support's, any other is billing's. The provider's own verdict on the
sender is kept where its payload gives one (proof.provider_verdict).

Connected at import: inbox.apps imports this module in ready().
"""

import json
import logging
from email import policy
from email.utils import parseaddr

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import inbound
from anymail.utils import get_anymail_setting
from django.conf import settings

from . import proof, services

logger = logging.getLogger(__name__)


def _raw(event) -> bytes:
    message = event.message
    try:
        return message.as_bytes()
    except Exception:  # a header the default policy will not fold: keep it as it came
        logger.warning("Inbound mail: %s could not be serialised as is", event.event_id)
    try:
        return message.as_bytes(policy=policy.compat32)
    except Exception:  # stored all the same (it lands in triage), never lost
        logger.exception("Inbound mail: %s stored as the provider's payload", event.event_id)
        return json.dumps(event.esp_event, default=str).encode()


def _base(address: str) -> str:
    local, _, domain = parseaddr(address or "")[1].lower().partition("@")
    return f"{local.split('+')[0]}@{domain}" if domain else ""


def mailbox_of(recipients) -> str:
    support = _base(settings.SUPPORT_EMAIL)
    return "support" if support and any(_base(r) == support for r in recipients) else "refunds"


def _recipients(message) -> list[str]:
    found = [getattr(message, "envelope_recipient", None) or ""]
    for name in ("to", "cc"):
        found += [getattr(a, "addr_spec", "") for a in getattr(message, name, None) or ()]
    return [r for r in found if r]


def mail_from_webhook(sender, event, esp_name, **kwargs):
    if not get_anymail_setting("webhook_secret", default=None):
        raise AnymailWebhookValidationFailure(
            "Inbound mail is refused until ANYMAIL_WEBHOOK_SECRET is set."
        )
    message = event.message
    from_domain = None
    if message is not None and getattr(message, "from_email", None) is not None:
        from_domain = (message.from_email.domain or "").lower() or None
    services.mail_receive(
        raw=_raw(event),
        source="webhook",
        mailbox=mailbox_of(_recipients(message)) if message is not None else "refunds",
        verdict=proof.provider_verdict(esp_name, event.esp_event, from_domain),
    )


inbound.connect(mail_from_webhook, dispatch_uid="inbox.webhook")
