"""What a paid order delivers, the moment it is paid (delivery policy §1-2): seats added,
periods started or renewed, plans upgraded, keys issued and mailed, credits usable,
add-ons active; and services, once staff record the customer's acceptance."""

from django.db import transaction
from django.utils import timezone

from accounts.errors import PortalError
from accounts.services import audit_record, require_staff

from ..hooks import ORDER_PAID_HOOKS
from ..locks import lock_account, lock_order_lines, lock_subscription
from ..models import LedgerEntry, Order, OrderLine, Product, Subscription
from .credit_balance import credit_balance_paid
from .documents import invoice_issue
from .ledger import ledger_post
from .licences import licence_issue
from .seats import seats_paid_sync
from .states import ORDER
from .subscription_state import subscription_paid_period, subscription_set_quantity

DELIVERED_ON_PAYMENT = frozenset(
    {OrderLine.Effect.LICENCE, OrderLine.Effect.CREDITS, OrderLine.Effect.ACTIVATE}
)


def order_mark_paid(order: Order, *, actor, now) -> None:
    """The order is paid: what it bought is the account's at once (delivery policy §1-2)."""
    order.paid_at = now
    ORDER.move(
        order,
        Order.Status.PAID,
        actor=actor,
        action="order.paid",
        changes={"total": str(order.total), "credit_applied": str(order.credit_applied)},
        also=["paid_at"],
    )

    def hold(line: OrderLine, why: str) -> None:
        ledger_post(
            account=order.account,
            currency=order.currency,
            amount=line.amount,
            kind=LedgerEntry.Kind.ORDER_CANCELLED,
            description=f"{order.number}: {line.description} {why}: held as credit",
            reference=order.number,
            actor=actor,
        )

    lines = list(order.lines.select_related("order__account", "product"))
    credit_balance_paid(order, lines)
    support_held = False
    # Subscriptions first: a licence is issued only if the support it needs applies.
    for line in sorted(lines, key=lambda item: item.subscription_id is None):
        if line.effect in DELIVERED_ON_PAYMENT:
            if support_held and line.kind == Product.Kind.PERPETUAL_LICENSE and line.amount:
                # 1CRM terms: users added later must include their support.
                hold(line, "could not be issued without its support")
                continue
            order_line_deliver(line, actor=actor, now=now)
            continue
        if not line.subscription_id:
            continue
        subscription = lock_subscription(line.subscription_id)
        if line.effect in (OrderLine.Effect.ADD_SEATS, OrderLine.Effect.CHANGE_PLAN) and (
            subscription.status not in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING)
            or line.period_end != subscription.current_period_end
        ):
            # Priced for a period that has moved on (a gateway may still settle it):
            # the money becomes credit instead of buying what no longer applies.
            hold(line, "was paid after its period ended")
            support_held |= line.kind == Product.Kind.SUPPORT_CONTRACT
            continue
        if line.effect == OrderLine.Effect.ADD_SEATS:
            subscription_set_quantity(
                subscription,
                subscription.quantity + line.quantity,
                actor=actor,
                reason=f"{order.number} paid",
            )
        elif line.effect in (OrderLine.Effect.RENEW, OrderLine.Effect.START):
            subscription_paid_period(subscription, line, actor=actor, order=order, now=now)
        elif line.effect == OrderLine.Effect.CHANGE_PLAN:
            old = subscription.price
            subscription.price = line.price
            subscription.pending_price = None
            subscription.save(update_fields=["price", "pending_price"])
            audit_record(
                actor=actor,
                action="subscription.upgraded",
                target=subscription,
                account=subscription.account,
                changes={"price": [str(old), str(line.price)], "order": order.number},
            )
    seats_paid_sync(order.account, actor=actor)
    invoice_issue(order, now=now)  # and its receipt, mailed after commit
    for hook in ORDER_PAID_HOOKS:  # apps above billing deliver what they sold
        hook(order=order, actor=actor, now=now)


def order_line_deliver(line: OrderLine, *, actor, now) -> None:
    """A paid line's goods, at once: keys issued, credits usable, add-ons active."""
    if line.effect == OrderLine.Effect.LICENCE:
        licence_issue(line, actor=actor, now=now)
        line.delivery = OrderLine.Delivery.KEY_SENT
    else:
        line.activated_at = now
    line.delivered_at = now
    line.save(update_fields=["delivery", "delivered_at", "activated_at"])
    audit_record(
        actor=actor,
        action="order_line.delivered",
        target=line,
        account=line.order.account,
        changes={"line": line.description, "order": line.order.number},
    )


def service_mark_accepted(*, actor, line: OrderLine, now=None) -> OrderLine:
    """Staff record that a paid service was delivered and accepted by the customer."""
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "billing.change_order")
        lock_account(line.order.account_id)
        line = lock_order_lines([line.pk])[line.pk]
        if line.kind != Product.Kind.SERVICE:
            raise PortalError(f"“{line.description}” is not a service.", field="line")
        if line.order.status != Order.Status.PAID:
            raise PortalError(f"{line.order.number} is not paid yet.", field="line")
        if line.delivery == OrderLine.Delivery.ACCEPTED:
            return line
        line.delivery = OrderLine.Delivery.ACCEPTED
        line.delivered_at = now
        line.save(update_fields=["delivery", "delivered_at"])
        audit_record(
            actor=actor,
            action="order_line.accepted",
            target=line,
            account=line.order.account,
            changes={"line": line.description, "order": line.order.number},
        )
    return line
