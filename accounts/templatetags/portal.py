"""{% load portal %}: money and dates in the account's locale (accounts.formatting).

{{ line.amount|money:order.currency }}   {{ invoice.issued_on|day }}
{{ message.created_at|moment }}          {% through period.start period.last %}
"""

from django import template

from accounts import formatting

register = template.Library()


@register.filter
def money(amount, currency):
    return formatting.money(amount, currency)


@register.filter
def day(value):
    return formatting.day(value)


@register.filter
def moment(value):
    return formatting.moment(value)


@register.simple_tag
def through(first, last):
    return formatting.through(first, last)
