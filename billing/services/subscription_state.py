"""A subscription's own changes, used by the use cases and by delivery: its quantity, and
the period a paid start or renewal gives it."""

from accounts import services as account_services
from accounts.services import audit_record

from ..models import Order, OrderLine, Product, Subscription
from ..periods import next_period_end
from ..selectors import account_today
from .licences import licence_renounce_excess
from .states import SUBSCRIPTION


def subscription_open(
    *, account, price, seats: int, start, end, trial: bool, actor, now=None
) -> Subscription:
    """A new subscription from `start` to `end`: a free trial (no order, nothing charged;
    audited as subscription.trial_started), or one awaiting its first payment."""
    subscription = Subscription.objects.create(
        account=account,
        price=price,
        quantity=seats,
        status=Subscription.Status.TRIALING if trial else Subscription.Status.PENDING,
        current_period_start=start,
        current_period_end=end,
        trial_end=end if trial else None,
        **({"created_at": now} if now is not None else {}),
    )
    if trial:
        audit_record(
            actor=actor,
            action="subscription.trial_started",
            target=subscription,
            account=account,
            changes={"price": str(price), "trial_end": str(end)},
        )
    return subscription


def subscription_end(subscription: Subscription, *, actor, changes: dict) -> bool:
    """End a subscription for good (its pending downgrade with it); audited as
    subscription.ended with `changes` saying why. False if it had ended already."""
    if subscription.status == Subscription.Status.CANCELLED:
        return False
    subscription.pending_price = None
    return SUBSCRIPTION.move(
        subscription,
        Subscription.Status.CANCELLED,
        actor=actor,
        action="subscription.ended",
        account=subscription.account,
        changes=changes,
        also=["pending_price"],
    )


def subscription_set_quantity(
    subscription: Subscription, quantity: int, *, actor, reason: str
) -> None:
    old = subscription.quantity
    subscription.quantity = quantity
    subscription.save(update_fields=["quantity"])
    audit_record(
        actor=actor,
        action="subscription.seats_changed",
        target=subscription,
        account=subscription.account,
        changes={"quantity": [old, quantity], "reason": reason},
    )


def subscription_paid_period(
    subscription: Subscription, line: OrderLine, *, actor, order: Order, now
) -> None:
    today = account_today(subscription.account, now)
    is_support = subscription.price.product.kind == Product.Kind.SUPPORT_CONTRACT
    if is_support and line.effect == OrderLine.Effect.RENEW:
        # A support renewal covers the period it was quoted for, in arrears when late
        # (1CRM terms); renewing for fewer users renounces the excess licences.
        licence_renounce_excess(
            subscription.account, keep=line.quantity, actor=actor, reference=order.number
        )
        subscription.quantity = line.quantity
        subscription.save(update_fields=["quantity"])
        if (
            subscription.status == Subscription.Status.ACTIVE
            and line.period_start == subscription.current_period_end
        ):
            # Renewed before the expiry: the contract simply runs on.
            line.period_start = subscription.current_period_start
    elif today > line.period_start:
        # Paid late: the period starts now, so no paid-for time has passed unused.
        interval = line.price.interval if line.price_id else subscription.price.interval
        line.period_start, line.period_end = today, next_period_end(today, interval)
        line.save(update_fields=["period_start", "period_end"])
    subscription.current_period_start = line.period_start
    subscription.current_period_end = line.period_end
    # A downgrade waiting for this cycle takes effect with it (acelle §6).
    subscription.price = line.price
    subscription.pending_price = None
    fields = ["current_period_start", "current_period_end", "price", "pending_price"]
    changes = {"period": [str(line.period_start), str(line.period_end)], "order": order.number}
    if not SUBSCRIPTION.move(
        subscription,
        Subscription.Status.ACTIVE,
        actor=actor,
        action="subscription.renewed",
        account=subscription.account,
        changes=changes,
        also=fields,
    ):  # renewed while active: the period moves on
        subscription.save(update_fields=fields)
        audit_record(
            actor=actor,
            action="subscription.renewed",
            target=subscription,
            account=subscription.account,
            changes=changes,
        )
    if subscription.price.product.kind == Product.Kind.SUBSCRIPTION:
        account_services.account_set_licence_screen(
            account=subscription.account, on=False, reason=f"{order.number} paid", actor=actor
        )
