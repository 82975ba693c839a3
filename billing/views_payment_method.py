"""Billing > Payment method: the card the Stripe gateway charges (BILLING_GATEWAY=stripe).

Stripe.js collects the card against a SetupIntent; the page then posts the
SetupIntent's id here, and the card it set up becomes the account's default.
"""

import logging

import stripe
from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render

from accounts.errors import PortalError
from accounts.views import member_view
from core import csp

from . import payment_methods

logger = logging.getLogger(__name__)
UNREACHABLE = "Stripe could not be reached; nothing was changed. Try again in a minute."


@member_view(need="billing", on_licence_screen=True)
def payment_method(request):
    if settings.BILLING_GATEWAY != "stripe":
        raise Http404("Cards are not taken online here.")
    account = request.portal.account
    if account.reseller_id:
        raise Http404("This account is billed by its reseller.")
    if request.method == "POST":
        try:
            card = payment_methods.card_set_default(
                actor=request.user,
                account=account,
                setup_intent_id=request.POST.get("setup_intent", ""),
            )
        except PortalError as exc:
            messages.error(request, exc.message)
            return redirect("billing_payment_method")
        except stripe.StripeError:
            logger.exception("Stripe refused or failed to set the default card")
            messages.error(request, UNREACHABLE)
            return redirect("billing_payment_method")
        messages.success(request, f"{card} is now the card your orders are charged to.")
        return redirect("settings_billing")
    try:
        intent = payment_methods.card_setup_start(actor=request.user, account=account)
    except stripe.StripeError:
        logger.exception("Stripe refused or failed to start a card set-up")
        messages.error(request, UNREACHABLE)
        return redirect("settings_billing")
    response = render(
        request,
        "billing/payment_method.html",
        {
            "tab": "billing",
            "account": account,
            "card": payment_methods.card_on_file(account=account),
            "client_secret": intent.client_secret,
            "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "stripe_js_url": settings.STRIPE_JS_URL,
        },
    )
    return csp.allow(response, _stripe_js_sources())


def _stripe_js_sources() -> dict:
    """Stripe.js runs on this page only: its script, and the API it calls when STRIPE_API_BASE
    points elsewhere than Stripe (localstripe, whose script also draws the card fields)."""
    js = csp.origin(settings.STRIPE_JS_URL)
    api = csp.origin(settings.STRIPE_API_BASE)
    return {"script-src": [js], "frame-src": [js], "connect-src": [api]}
