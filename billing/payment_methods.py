"""The card an account keeps on file with Stripe, which the Stripe gateway charges.

The account's Stripe customer is dj-stripe's Customer whose subscriber is the
Account, created the first time someone sets up a card. Stripe.js collects the card
in the browser against a SetupIntent (card numbers never reach the portal); once it
has succeeded, `card_set_default` makes it the customer's default card, and keeps
dj-stripe's copy, which the Billing page shows without calling Stripe.

No transaction is held while Stripe is called.
"""

import logging
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.db import transaction
from djstripe.models import Customer, PaymentMethod

from accounts.errors import PortalError
from accounts.services import audit_record

from .gateways.stripe import api_options, customer_id_for
from .services.common import require_billing_role

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Card:
    brand: str
    last4: str
    exp_month: int
    exp_year: int

    def __str__(self):
        return (
            f"{self.brand.title()} ending in {self.last4}, "
            f"expires {self.exp_month:02d}/{self.exp_year}"
        )


def _field(obj, key):
    return obj[key] if obj is not None and key in obj else None


def card_of(method) -> Card | None:
    """The card of a stored dj-stripe payment method (its stripe_data), or None."""
    card = _field(method, "card")
    if not card:
        return None
    return Card(
        brand=str(card["brand"]),
        last4=str(card["last4"]),
        exp_month=int(card["exp_month"]),
        exp_year=int(card["exp_year"]),
    )


def card_on_file(*, account) -> Card | None:
    """The default card as last set up here (no call to Stripe on a page view)."""
    customer = (
        Customer.objects.filter(
            subscriber=account, livemode=settings.STRIPE_LIVE_MODE, date_purged__isnull=True
        )
        .select_related("default_payment_method")
        .order_by("-djstripe_created")
        .first()
    )
    method = customer.default_payment_method if customer else None
    return card_of(method.stripe_data) if method else None


def card_setup_start(*, actor, account):
    """A SetupIntent for the account's customer (created on first use) for Stripe.js."""
    require_billing_role(actor=actor, account=account)
    customer, created = Customer.get_or_create(
        subscriber=account,
        livemode=settings.STRIPE_LIVE_MODE,
        api_key=settings.STRIPE_SECRET_KEY,
        description=account.name,
    )
    if created:
        audit_record(
            actor=actor,
            action="payment_method.customer_created",
            target=customer,
            account=account,
            changes={"stripe_customer": customer.id},
        )
    return stripe.SetupIntent.create(
        customer=customer.id,
        usage="off_session",
        payment_method_types=["card"],
        metadata={"account_id": str(account.pk)},
        **api_options(),
    )


def card_set_default(*, actor, account, setup_intent_id: str) -> Card:
    """The card of a succeeded SetupIntent becomes the one charged; the previous one goes."""
    require_billing_role(actor=actor, account=account)
    customer_id = customer_id_for(account)
    refused = PortalError("That card was not set up; try again.", field="setup_intent")
    if customer_id is None or not str(setup_intent_id).startswith("seti_"):
        raise refused
    try:
        intent = stripe.SetupIntent.retrieve(setup_intent_id, **api_options())
    except stripe.InvalidRequestError as exc:
        raise refused from exc
    method_id = _field(intent, "payment_method")
    if _field(intent, "customer") != customer_id or intent.status != "succeeded" or not method_id:
        raise refused  # another account's set-up, or one Stripe has not completed
    if not isinstance(method_id, str):
        method_id = method_id["id"]
    method = stripe.PaymentMethod.retrieve(method_id, **api_options())
    if not _field(method, "customer"):
        # Stripe attaches the card when the set-up succeeds; localstripe does not.
        method = stripe.PaymentMethod.attach(method_id, customer=customer_id, **api_options())
    previous = _field(
        _field(stripe.Customer.retrieve(customer_id, **api_options()), "invoice_settings"),
        "default_payment_method",
    )
    stripe_customer = stripe.Customer.modify(
        customer_id, invoice_settings={"default_payment_method": method_id}, **api_options()
    )
    if previous and previous != method_id:
        try:
            stripe.PaymentMethod.detach(previous, **api_options())
        except stripe.StripeError:
            logger.warning("Could not detach the replaced card %s of %s", previous, customer_id)
    PaymentMethod.sync_from_stripe_data(method, api_key=settings.STRIPE_SECRET_KEY)
    customer = Customer.sync_from_stripe_data(stripe_customer, api_key=settings.STRIPE_SECRET_KEY)
    card = card_of(method)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="payment_method.set_default",
            target=customer,
            account=account,
            changes={"card": str(card), "payment_method": method_id, "replaced": previous or ""},
        )
    return card
