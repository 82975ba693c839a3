"""Selling marketplace apps for their developers (onecloud §4): each paid plan is a
billing product of an app kind, and its orders, payments, refunds and keys are billing's
like any other. The marketplace app decides who may install what; billing sells it."""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import Account
from accounts.services import audit_record

from ..catalogue import price_terms_refusal
from ..locks import lock_account, lock_order, lock_subscription
from ..models import Licence, Order, OrderLine, Price, Product, Subscription
from ..money import Money
from ..periods import next_period_end
from ..selectors import account_today, entitlement_refusal, order_open_for
from .common import require_billing_role
from .orders import order_cancel_locked, order_place
from .subscription_state import subscription_end, subscription_open

APP_PRODUCT_KINDS = (
    Product.Kind.APP_SUBSCRIPTION,
    Product.Kind.APP_ONE_TIME,
    Product.Kind.APP_USAGE,
)


def app_product_save(
    *,
    actor,
    code: str,
    name: str,
    kind: str,
    prices: list[tuple[str, Decimal, str, str]],
    requires_edition: str = "",
    requires_product: Product | None = None,
) -> Product:
    """Create or update the billing product behind a paid app plan, with its prices
    (currency, amount, scheme, interval). A changed price is a new price row: what was
    sold keeps the terms it was sold on."""
    if kind not in APP_PRODUCT_KINDS:
        raise PortalError(f"“{kind}” is not a kind of paid app.", field="kind")
    if not prices:
        raise PortalError("A paid plan needs a price.", field="amount")
    for _currency, amount, scheme, interval in prices:
        refusal = price_terms_refusal(
            kind=kind, edition="", interval=interval, scheme=scheme, amount=amount
        )
        if refusal:
            raise PortalError(refusal, field="interval")
        if Decimal(amount) <= 0:
            raise PortalError("A paid plan's price is more than zero.", field="amount")
    with transaction.atomic():
        product, created = Product.objects.select_for_update().get_or_create(
            code=code,
            defaults={
                "name": name,
                "kind": kind,
                "deployment": Product.Deployment.CLOUD,
                "requires_edition": requires_edition,
                "requires_product": requires_product,
            },
        )
        if not created:
            if product.kind != kind:
                raise PortalError(
                    f"{product.name} is sold as {product.get_kind_display().lower()}; a new "
                    "pricing model is a new plan.",
                    field="pricing_model",
                )
            product.name = name
            product.requires_edition = requires_edition
            product.requires_product = requires_product
            product.save(update_fields=["name", "requires_edition", "requires_product"])
        for currency, amount, scheme, interval in prices:
            current = product.prices.filter(currency=currency, is_active=True).first()
            if current and (current.amount, current.scheme, current.interval) == (
                Decimal(amount),
                scheme,
                interval,
            ):
                continue
            product.prices.filter(currency=currency, is_active=True).update(is_active=False)
            Price.objects.create(
                product=product, currency=currency, amount=amount, scheme=scheme, interval=interval
            )
        audit_record(
            actor=actor,
            action="product.created" if created else "product.updated",
            target=product,
            changes={"kind": kind, "prices": [f"{c} {a} {s} {i}" for c, a, s, i in prices]},
        )
    return product


def app_price(account: Account, product: Product) -> Price:
    price = product.prices.filter(currency=account.currency, is_active=True).order_by("pk").first()
    if price is None:
        raise PortalError(f"{product.name} is not sold in {account.currency}.", field="plan")
    return price


def _refuse(account: Account, product: Product) -> None:
    if account.reseller_id:
        raise PortalError(
            f"{account.name}'s billing is provided by {account.reseller.name}.", field="plan"
        )
    refusal = entitlement_refusal(account, product)
    if refusal:
        raise PortalError(refusal, field="plan", code="not_entitled")


def app_subscription_start(
    *,
    actor,
    account: Account,
    product: Product,
    quantity: int = 1,
    trial_days: int = 0,
    refund_days: int | None = None,
    first_purchase: bool = True,
    now=None,
) -> tuple[Subscription, Order | None]:
    """Subscribe to a paid app plan: a free trial (no order, nothing charged), or the
    first period ordered now and active the moment it is paid (delivery policy §1-2)."""
    now = now or timezone.now()
    with transaction.atomic():
        account = lock_account(account)
        require_billing_role(actor=actor, account=account)
        _refuse(account, product)
        price = app_price(account, product)
        seats = quantity if price.scheme == Price.Scheme.PER_SEAT else 1
        today = account_today(account, now)
        trial = bool(trial_days)
        end = (
            today + timedelta(days=trial_days) if trial else next_period_end(today, price.interval)
        )
        subscription = subscription_open(
            account=account,
            price=price,
            seats=seats,
            start=today,
            end=end,
            trial=trial,
            actor=actor,
            now=now,
        )
        if trial:
            return subscription, None
        amount = (Money(price.amount, price.currency) * seats).rounded()
        per = f", {seats} seat(s)" if price.scheme == Price.Scheme.PER_SEAT else ""
        order = order_place(
            account=account,
            line={
                "product": product,
                "price": price,
                "subscription": subscription,
                "kind": product.kind,
                "description": (
                    f"{product.name}{per}, {today:%d %b %Y} to {end - timedelta(days=1):%d %b %Y}"
                ),
                "quantity": seats,
                "amount": amount.amount,
                "period_start": today,
                "period_end": end,
                # onecloud §4 refunds the initial purchase only: the caller says whether
                # the account had this app before (paid for, or a trial used).
                "first_purchase": first_purchase,
                "refund_days": refund_days,
                "effect": OrderLine.Effect.START,
            },
            actor=actor,
            now=now,
            changes={"app": product.code, "total": str(amount)},
        )
    subscription.refresh_from_db()
    return subscription, order


def app_licence_buy(*, actor, account: Account, product: Product, now=None) -> Order:
    """Buy a one-time (lifetime) app licence: its key is issued the moment it is paid."""
    now = now or timezone.now()
    with transaction.atomic():
        account = lock_account(account)
        require_billing_role(actor=actor, account=account)
        _refuse(account, product)
        if Licence.objects.filter(
            account=account, product=product, status=Licence.Status.ACTIVE
        ).exists():
            raise PortalError(
                f"{account.name} already holds a lifetime licence of {product.name}.",
                field="plan",
            )
        price = app_price(account, product)
        order = order_place(
            account=account,
            line={
                "product": product,
                "price": price,
                "kind": product.kind,
                "description": (
                    product.name
                    if "licence" in product.name.lower()
                    else f"{product.name}, lifetime licence"
                ),
                "quantity": 1,
                "amount": Money(price.amount, price.currency).rounded().amount,
                "first_purchase": True,
                "effect": OrderLine.Effect.LICENCE,
            },
            actor=actor,
            now=now,
            changes={"app": product.code},
        )
    return order


def app_subscription_cancel(*, actor, subscription: Subscription, now=None) -> str:
    """Stop an app subscription, per onecloud §4: a trial ends now and nothing is ever
    charged; an unpaid first order is withdrawn; a paid one runs to the end of its period
    and does not renew. Says which: "ended", "withdrawn", "at_period_end" or "ended_before"."""
    now = now or timezone.now()
    with transaction.atomic():
        account = lock_account(subscription.account)
        require_billing_role(actor=actor, account=account)
        order = order_open_for(subscription)  # billing.locks: the order before its plan
        order = lock_order(order) if order is not None else None
        subscription = lock_subscription(subscription)
        if subscription.price.product.kind != Product.Kind.APP_SUBSCRIPTION:
            raise PortalError("This is not an app subscription.", field="subscription")
        status = subscription.status
        if status == Subscription.Status.CANCELLED:
            return "ended_before"
        if status == Subscription.Status.TRIALING:
            subscription_end(
                subscription, actor=actor, changes={"reason": "cancelled during its trial"}
            )
            return "ended"
        if status in (Subscription.Status.PENDING, Subscription.Status.LAPSED):
            if order is not None and order.status == Order.Status.AWAITING_PAYMENT:
                order_cancel_locked(order, account=account, actor=actor, reason="app cancelled")
            subscription.refresh_from_db()
            subscription_end(subscription, actor=actor, changes={"reason": "cancelled unpaid"})
            return "withdrawn"
        if not subscription.cancel_at_period_end:
            subscription.cancel_at_period_end = True
            subscription.save(update_fields=["cancel_at_period_end"])
            audit_record(
                actor=actor,
                action="subscription.cancelled",
                target=subscription,
                account=account,
                changes={"cancel_at_period_end": [False, True]},
            )
        return "at_period_end"


def app_subscription_switch(*, actor, subscription: Subscription, product: Product) -> str:
    """Move an app subscription to another plan of the same app: during a trial at once,
    else from the next renewal (the paid period keeps the price it was paid at). Back to
    its own plan undoes a planned move. Says "now", "next_period", "undone" or "none"."""
    with transaction.atomic():
        account = lock_account(subscription.account)
        require_billing_role(actor=actor, account=account)
        _refuse(account, product)
        subscription = lock_subscription(subscription)
        if product.kind != Product.Kind.APP_SUBSCRIPTION:
            raise PortalError("Switch to another subscription plan.", field="plan")
        if subscription.status not in (Subscription.Status.TRIALING, Subscription.Status.ACTIVE):
            raise PortalError(
                f"The subscription is {subscription.get_status_display().lower()}.", field="plan"
            )
        if subscription.cancel_at_period_end:
            raise PortalError(
                f"The subscription is cancelled and ends on {subscription.last_day.day} "
                f"{subscription.last_day:%B %Y}: install the app again after that to choose "
                "another plan.",
                field="plan",
            )
        old = subscription.pending_price or subscription.price
        if product.pk == subscription.price.product_id:
            # Back to the plan it is on: a move planned for the next cycle is undone.
            if subscription.pending_price_id is None:
                return "none"
            subscription.pending_price = None
            subscription.save(update_fields=["pending_price"])
            audit_record(
                actor=actor,
                action="subscription.plan_switch_undone",
                target=subscription,
                account=account,
                changes={"pending_price": [str(old), None]},
            )
            return "undone"
        price = app_price(account, product)
        when = "now" if subscription.status == Subscription.Status.TRIALING else "next_period"
        if when == "now":
            subscription.price = price
            subscription.pending_price = None
        else:
            subscription.pending_price = price
        subscription.save(update_fields=["price", "pending_price"])
        audit_record(
            actor=actor,
            action="subscription.plan_switched",
            target=subscription,
            account=account,
            changes={"price": [str(old), str(price)], "when": when},
        )
    return when
