"""Stripe: an off-session PaymentIntent on the card the account keeps on file.

The account's Stripe customer is dj-stripe's Customer whose subscriber is the
Account (DJSTRIPE_SUBSCRIBER_MODEL). Amounts go in minor units, exactly; the
payment's stored idempotency key is Stripe's, so a retried job never charges
twice. Network and server errors raise: the Celery task retries with the same key.
"""

import logging

import stripe
from django.conf import settings

from ..money import Money, MoneyError
from . import ChargeResult

logger = logging.getLogger(__name__)

NO_CARD = (
    "No card is on file for this account: add one on the Billing page "
    "(Payment method) so that orders can be paid."
)
PENDING_STATUSES = {"processing", "requires_action", "requires_confirmation", "requires_capture"}


def configure() -> None:
    """Point the SDK at STRIPE_API_BASE (localstripe) when it is set; once per process."""
    if settings.STRIPE_API_BASE:
        stripe.api_base = settings.STRIPE_API_BASE


def api_options() -> dict:
    return {"api_key": settings.STRIPE_SECRET_KEY}


def minor_units(amount: Money) -> int:
    """What Stripe is sent: 33.33 USD is 3333, 1000 JPY is 1000. An amount finer than
    the currency's minor unit is a bug upstream, never silently rounded here."""
    units = amount.to_minor_units()
    if Money.from_minor_units(units, amount.currency).amount != amount.amount:
        raise MoneyError(f"{amount.amount} {amount.currency} is finer than its minor unit.")
    return units


def customer_id_for(account) -> str | None:
    """The Stripe id of the account's customer, if it ever set up a card."""
    from djstripe.models import Customer

    return (
        Customer.objects.filter(
            subscriber=account, livemode=settings.STRIPE_LIVE_MODE, date_purged__isnull=True
        )
        .order_by("-djstripe_created")
        .values_list("id", flat=True)
        .first()
    )


def _field(obj, key):
    """A Stripe object's field, None when absent (stripe 15 objects are no dicts)."""
    return obj[key] if obj is not None and key in obj else None


def default_payment_method(customer_id: str) -> str | None:
    """The customer's default card, or else the card attached to it, if any."""
    customer = stripe.Customer.retrieve(customer_id, **api_options())
    if _field(customer, "deleted"):
        return None
    default = _field(_field(customer, "invoice_settings"), "default_payment_method")
    if default:
        return default if isinstance(default, str) else default["id"]
    cards = stripe.PaymentMethod.list(customer=customer_id, type="card", limit=1, **api_options())
    return cards.data[0].id if cards.data else None


def _result(intent) -> ChargeResult:
    if intent.status == "succeeded":
        return ChargeResult(status="succeeded", reference=intent.id)
    if intent.status in PENDING_STATUSES:
        message = (
            "Your bank asks you to confirm this payment."
            if intent.status == "requires_action"
            else "The payment is being processed."
        )
        return ChargeResult(status="pending", reference=intent.id, message=message)
    return ChargeResult(
        status="failed",
        reference=intent.id,
        message=_field(_field(intent, "last_payment_error"), "message")
        or f"The payment was not made ({intent.status}).",
    )


class StripeGateway:
    name = "stripe"

    def charge(
        self, *, account, amount: Money, idempotency_key, description, payment_id=None
    ) -> ChargeResult:
        customer_id = customer_id_for(account)
        try:
            payment_method = default_payment_method(customer_id) if customer_id else None
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing":
                raise
            logger.warning("Stripe customer %s of account %s is gone", customer_id, account.pk)
            payment_method = None
        if payment_method is None:
            return ChargeResult(status="failed", message=NO_CARD)
        try:
            intent = stripe.PaymentIntent.create(
                amount=minor_units(amount),
                currency=amount.currency.lower(),
                customer=customer_id,
                payment_method=payment_method,
                off_session=True,
                confirm=True,
                metadata={"payment_id": str(payment_id or ""), "order": description},
                idempotency_key=idempotency_key,
                **api_options(),
            )
        except stripe.CardError as exc:
            intent = _field(exc.error, "payment_intent")
            return ChargeResult(
                status="failed",
                reference=_field(intent, "id") or "",
                message=exc.user_message or "The card was declined.",
            )
        return _result(intent)

    def refund(self, *, charge_reference, amount: Money, idempotency_key, metadata) -> ChargeResult:
        """Refund part or all of a PaymentIntent; the same key never refunds twice."""
        try:
            refund = stripe.Refund.create(
                payment_intent=charge_reference,
                amount=minor_units(amount),
                metadata=metadata,
                idempotency_key=idempotency_key,
                **api_options(),
            )
        except stripe.InvalidRequestError as exc:
            # Stripe refuses the refund itself (already refunded, charge too old...).
            return ChargeResult(status="failed", message=exc.user_message or str(exc)[:300])
        status = _field(refund, "status")
        if status == "succeeded":
            return ChargeResult(status="succeeded", reference=refund.id)
        if status in ("failed", "canceled"):
            reason = _field(refund, "failure_reason") or status
            return ChargeResult(
                status="failed", reference=refund.id, message=f"The refund {reason}."
            )
        return ChargeResult(status="pending", reference=refund.id, message="Refund pending.")
