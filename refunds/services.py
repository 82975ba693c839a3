"""Facts for the policy engine from orders, and its decisions for the portal's pages.

The engine (refunds.policy) is pure; this module reads the database and the clock.
"""

from datetime import date

from django.conf import settings
from django.utils import timezone

from accounts.models import CURRENCIES, Account
from billing.models import Order, OrderLine, Product

from .calendar import vendor_holidays
from .policy import PRESETS, AccountFacts, Context, Decision, LineFacts, RequestFacts, decide

# What "delivered" means per kind (acelle §3.1): the key downloaded or activated, the
# plugin key activated, the service delivered and accepted.
DELIVERED = {
    Product.Kind.PERPETUAL_LICENSE: {OrderLine.Delivery.DOWNLOADED},
    Product.Kind.PLUGIN: {OrderLine.Delivery.DOWNLOADED},
    Product.Kind.SERVICE: {OrderLine.Delivery.ACCEPTED},
}


def account_today(account: Account) -> date:
    return timezone.localtime(timezone.now(), account.tzinfo).date()


def active_preset():
    return PRESETS[settings.REFUND_POLICY]


def context_for(account: Account) -> Context:
    return Context(
        currency=account.currency, digits=CURRENCIES[account.currency], holidays=vendor_holidays()
    )


def account_facts(account: Account) -> AccountFacts:
    return AccountFacts(
        status="suspended_tos" if account.status == Account.Status.SUSPENDED_TOS else "active",
        partner=account.reseller.name if account.reseller_id else None,
    )


def line_facts(line: OrderLine, account: Account) -> LineFacts:
    """The facts of a paid line, its dates in the account's local calendar."""
    paid_at = line.order.paid_at or line.order.created_at
    period = (line.period_start, line.period_end) if line.period_start and line.period_end else None
    return LineFacts(
        id=str(line.pk),
        kind=line.kind,
        amount=line.amount,
        paid=timezone.localtime(paid_at, account.tzinfo).date(),
        first_purchase=line.first_purchase,
        period=period,
        units=line.units,
        units_used=line.units_used,
        activated=line.activated_at is not None and line.kind == Product.Kind.QUOTA_ADDON,
        delivered=line.delivery in DELIVERED.get(line.kind, ()),
        used=line.units_used > 0,
        description=line.description,
        order=str(line.order_id),
    )


def whole_orders(lines: list[OrderLine]) -> list[OrderLine]:
    """A full-order request is about every line of its orders (acelle §4), not only the
    ones picked: the lines left out must count too."""
    extra = (
        OrderLine.objects.filter(order_id__in={line.order_id for line in lines}, amount__gt=0)
        .exclude(pk__in=[line.pk for line in lines])
        .select_related("order")
        .order_by("order_id", "pk")
    )
    return [*lines, *extra]


def decisions_for(
    *,
    account: Account,
    lines: list[OrderLine],
    on: date,
    reason: str = "no_longer_needed",
    event: date | None = None,
    full_order: bool = False,
    preset=None,
) -> dict[int, Decision]:
    """What a request received on `on` (a local date) would get, per line; a full-order
    request also decides the order's other lines."""
    if full_order:
        lines = whole_orders(lines)
    facts = [line_facts(line, account) for line in lines]
    request = RequestFacts(date=on, reason=reason, event=event, full_order=full_order)
    decided = decide(
        preset or active_preset(),
        account=account_facts(account),
        lines=facts,
        request=request,
        ctx=context_for(account),
    )
    return {int(key): decision for key, decision in decided.items()}


def outlook(*, account: Account, orders) -> dict[int, Decision]:
    """For the Billing page: each paid line, as if the customer asked today."""
    lines = [
        line
        for order in orders
        if order.status == Order.Status.PAID
        for line in order.lines.all()
        if line.amount > 0
    ]
    if not lines:
        return {}
    return decisions_for(account=account, lines=lines, on=account_today(account))
