from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.html import format_html

from accounts import formatting

from .. import wording
from ..wording import Outlook

register = template.Library()


@register.filter
def plain(text):
    """An engine explanation as customers read it: no clause ids."""
    return wording.plain(text)


OUTCOME_WORDS = {
    "refund": "refundable",
    "review": "refundable after review",
    "none": "not refundable",
    "redirect": "decided by someone else",
}


@register.filter
def outcome_words(outcome):
    """The engine's outcome ("refund", "review", "none", "redirect") in words."""
    return OUTCOME_WORDS.get(outcome, outcome)


@register.simple_tag
def policy_link(clause):
    """The policy section a clause names, as a link to its text; nothing when the written
    policy does not speak of it."""
    link = wording.clause_link(clause)
    if link is None:
        return ""
    return format_html('<a href="{}" class="policy-link">{}</a>', link.url, link.label)


@register.simple_tag
def policy_ref(clause):
    """The same for a plain-text mail: "Not eligible for refund (section 1.3):
    https://…/policies/acelle/#s1-3"."""
    link = wording.clause_link(clause)
    if link is None:
        return ""
    return f"{link.label}: {settings.PORTAL_BASE_URL.rstrip('/')}{link.url}"


@register.simple_tag
def policy_url(name, anchor):
    """A policy section's address for a mail: https://…/policies/onecloud/#s4."""
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{reverse('policy_page', args=[name])}#{anchor}"


@register.simple_tag
def refund_hint(outlook, line_id, currency=None):
    """One line of the Billing page: what a refund request made today would get, in the
    given currency (else the outlook's: billing_page_sections' carries the account's)."""
    decision = outlook.get(line_id) if outlook else None
    if decision is None:
        return ""
    currency = currency or outlook.currency
    until = f", until {formatting.day(decision.last_day)}" if decision.last_day else ""
    amount = formatting.money(decision.amount, currency)
    if decision.outcome == "refund":
        text = f"Refundable today: {amount}{until}"
    elif decision.outcome == "review":
        text = f"Refundable only after review, up to {amount}{until}"
    elif decision.outcome == "redirect":
        text = "Refunds are decided by someone else"
    else:
        text = "Not refundable"
    link = policy_link(decision.clause)
    return format_html(
        '<span class="refund-hint refund-{}" title="{}" data-clause="{}">{}.{}</span>',
        decision.outcome,
        wording.plain(decision.explanation),
        decision.clause,
        text,
        format_html(" {}", link) if link else "",
    )


@register.simple_tag
def refund_hint_map(decision, currency):
    """The same hint for a decision already in hand (the refund request page)."""
    return refund_hint(Outlook({0: decision} if decision else {}, currency=currency), 0)


@register.simple_tag
def in_refund(busy, line_id):
    """The open refund request a purchase is in, if any."""
    return (busy or {}).get(line_id)
