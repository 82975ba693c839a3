"""Stripe webhooks: verified, stored and deduplicated by dj-stripe; settled by services.

Stripe posts to /stripe/webhook/, signed with STRIPE_WEBHOOK_SECRET. A request whose
signature does not verify gets 400 and nothing is stored. A verified one goes through
dj-stripe: a WebhookEventTrigger row, then an Event unique by Stripe's event id (a
replayed event is not processed again), whose signals call the receivers below. An
error in a receiver rolls the event back and answers 500, so Stripe sends it again.
"""

import logging

import stripe
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.event_handlers import djstripe_receiver
from djstripe.models import WebhookEndpoint, WebhookEventTrigger

from . import services
from .gateways.stripe import minor_units
from .models import Payment
from .money import Money, MoneyError

logger = logging.getLogger(__name__)

# The local row dj-stripe files webhooks under, standing for the endpoint set in settings.
ENDPOINT_ID = "we_portal_settings"
EVENTS = ["payment_intent.succeeded", "payment_intent.payment_failed"]


def _endpoint(secret: str) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(id=ENDPOINT_ID).first()
    if endpoint is None:
        try:
            with transaction.atomic():
                endpoint = WebhookEndpoint.objects.create(
                    id=ENDPOINT_ID,
                    livemode=settings.STRIPE_LIVE_MODE,
                    url=settings.PORTAL_BASE_URL.rstrip("/") + reverse("stripe_webhook"),
                    enabled_events=EVENTS,
                    secret=secret,
                    status="enabled",
                )
        except IntegrityError:  # a concurrent first webhook created it
            endpoint = WebhookEndpoint.objects.get(id=ENDPOINT_ID)
    if endpoint.secret != secret or endpoint.livemode != settings.STRIPE_LIVE_MODE:
        endpoint.secret = secret  # the secret was rotated
        endpoint.livemode = settings.STRIPE_LIVE_MODE
        endpoint.save(update_fields=["secret", "livemode", "djstripe_updated"])
    return endpoint


@csrf_exempt
@login_not_required
@require_POST
@transaction.non_atomic_requests
def stripe_webhook(request):
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise Http404("No Stripe webhook is configured.")
    try:
        stripe.WebhookSignature.verify_header(
            request.body.decode("utf-8"),
            request.headers.get("Stripe-Signature", ""),
            secret,
            stripe.Webhook.DEFAULT_TOLERANCE,
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        logger.warning("Stripe webhook refused: its signature does not verify")
        return HttpResponseBadRequest("The Stripe-Signature header does not verify.")
    trigger = WebhookEventTrigger.from_request(request, webhook_endpoint=_endpoint(secret))
    if not trigger.valid:
        return HttpResponseBadRequest("The event is not valid.")
    return HttpResponse(str(trigger.id))


def _payment_for(intent: dict) -> Payment | None:
    """The portal payment a PaymentIntent was made for (its metadata says which)."""
    metadata = intent.get("metadata") or {}
    payment_id = str(metadata.get("payment_id") or "")
    if not payment_id.isdigit():
        return None  # not made by the portal
    payment = (
        Payment.objects.select_related("order").filter(pk=int(payment_id), gateway="stripe").first()
    )
    try:
        matches = (
            payment is not None
            and payment.order.number == metadata.get("order")
            and str(intent.get("currency", "")).upper() == payment.currency
            and intent.get("amount") == minor_units(Money(payment.amount, payment.currency))
        )
    except MoneyError:
        matches = False
    if not matches:
        logger.error(
            "Stripe PaymentIntent %s names payment %s but does not match it: left alone",
            intent.get("id"),
            payment_id,
        )
        return None
    return payment


@djstripe_receiver("payment_intent.succeeded")
def payment_intent_succeeded(sender, event, **kwargs):
    intent = event.data["object"]
    payment = _payment_for(intent)
    if payment is not None:
        services.payment_succeeded(payment=payment, reference=intent["id"], actor=None)


@djstripe_receiver("payment_intent.payment_failed")
def payment_intent_payment_failed(sender, event, **kwargs):
    intent = event.data["object"]
    payment = _payment_for(intent)
    if payment is not None:
        error = intent.get("last_payment_error") or {}
        services.payment_failed(
            payment=payment, message=error.get("message") or "The card was declined."
        )
