"""The anymail inbound webhook (/anymail/<esp>/inbound/, any provider anymail supports).

Anymail checks ANYMAIL["WEBHOOK_SECRET"] (HTTP basic auth, "user:password") before
sending its `inbound` signal, and answers 400 to a missing or wrong one. Without a
secret configured anymail would take any post: this receiver then refuses (400 as
well) rather than store mail nobody vouched for. A mail that cannot be stored raises,
so the provider gets a 500 and delivers it again later.

Connected at import: refunds.apps imports this module in ready().
"""

import json
import logging
from email import policy

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import inbound
from anymail.utils import get_anymail_setting

from . import intake

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


def mail_from_webhook(sender, event, esp_name, **kwargs):
    if not get_anymail_setting("webhook_secret", default=None):
        raise AnymailWebhookValidationFailure(
            "Inbound mail is refused until ANYMAIL_WEBHOOK_SECRET is set."
        )
    intake.mail_receive(raw=_raw(event), source="webhook")


inbound.connect(mail_from_webhook, dispatch_uid="refunds.mail.webhook")
