"""Stripe tells us how a card refund ended; dj-stripe verified and stored the event
(billing/webhooks.py), and each is processed once."""

import logging

from djstripe.event_handlers import djstripe_receiver

from . import services
from .models import RefundPayout

logger = logging.getLogger(__name__)


def settle_refund(refund: dict) -> None:
    metadata = refund.get("metadata") or {}
    payout_id = str(metadata.get("refund_payout_id") or "")
    if not payout_id.isdigit():
        return  # not a refund the portal made
    payout = RefundPayout.objects.filter(pk=int(payout_id), method="stripe").first()
    if payout is None:
        logger.error("Stripe refund %s names an unknown payout %s", refund.get("id"), payout_id)
        return
    status = refund.get("status")
    if status == "succeeded":
        services.refund_payout_succeeded(
            payout=payout,
            reference=refund.get("id", ""),
            idempotency_key=str(metadata.get("refund_key") or ""),
        )
    elif status in ("failed", "canceled"):
        reason = refund.get("failure_reason") or status
        services.refund_payout_failed(
            payout=payout,
            message=f"The refund {reason}.",
            idempotency_key=str(metadata.get("refund_key") or ""),
        )


@djstripe_receiver(["refund.updated", "charge.refund.updated", "refund.created"])
def refund_updated(sender, event, **kwargs):
    settle_refund(event.data["object"])


@djstripe_receiver("charge.refunded")
def charge_refunded(sender, event, **kwargs):
    for refund in (event.data["object"].get("refunds") or {}).get("data") or []:
        settle_refund(refund)
