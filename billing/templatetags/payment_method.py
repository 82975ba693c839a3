"""The Payment method section of the Billing page (templates/billing/_payment_method.html)."""

from django import template
from django.conf import settings

from billing import payment_methods

register = template.Library()


@register.simple_tag
def stripe_enabled() -> bool:
    return settings.BILLING_GATEWAY == "stripe"


@register.simple_tag
def card_on_file(account):
    return payment_methods.card_on_file(account=account)
