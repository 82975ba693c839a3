from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def refund_hint(outlook, line_id):
    """One line of the Billing page: what a refund request made today would get."""
    decision = outlook.get(line_id) if outlook else None
    if decision is None:
        return ""
    until = f" until {decision.last_day.day} {decision.last_day:%B %Y}" if decision.last_day else ""
    if decision.outcome == "refund":
        text = f"Refundable today: {decision.amount:,}{until}"
    elif decision.outcome == "review":
        text = f"Refundable only after review, up to {decision.amount:,}{until}"
    elif decision.outcome == "redirect":
        text = "Refunds are decided by someone else"
    else:
        text = "Not refundable"
    return format_html(
        '<span class="refund-hint refund-{}" title="{}" data-clause="{}">{} ({})</span>',
        decision.outcome,
        decision.explanation,
        decision.clause,
        text,
        decision.clause,
    )


@register.simple_tag
def refund_hint_map(decision):
    """The same hint for a decision already in hand (the refund request page)."""
    return refund_hint({0: decision} if decision else {}, 0)


@register.simple_tag
def in_refund(busy, line_id):
    """The open refund request a purchase is in, if any."""
    return (busy or {}).get(line_id)
