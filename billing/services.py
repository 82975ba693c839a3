"""Every state change of billing. This first part: the credit ledger.

Credits arrive from seat decreases (1CRM terms: "an immediate non-refundable
credit to the client account balance, which will automatically be applied
against future charges"), from refunds paid as credit, and from staff
adjustments; they are applied to later charges, oldest first.
"""

import hashlib
import logging
import secrets
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.errors import NotAllowed, PortalError
from accounts.models import Account
from accounts.services import audit_record, clean_text, require_staff

from .gateways import get_gateway
from .models import LedgerEntry, Order, OrderLine, Payment, Price, Product, Subscription
from .money import Money
from .quotes import PlanChangeQuote, SeatChangeQuote, plan_change_quote, seat_change_quote

logger = logging.getLogger(__name__)


def _lock(account: Account) -> Account:
    return Account.objects.select_for_update().get(pk=account.pk)


def _append(*, account, currency, amount: Decimal, kind, description, reference, actor):
    """Append one entry; the caller holds the account's row lock."""
    last = (
        LedgerEntry.objects.filter(account=account, currency=currency)
        .order_by("-sequence")
        .only("sequence", "balance_after")
        .first()
    )
    balance = last.balance_after if last else Decimal(0)
    if balance + amount < 0:
        raise PortalError(
            f"The {currency} credit balance is {Money(balance, currency)}; "
            "it cannot go below zero.",
            field="amount",
        )
    return LedgerEntry.objects.create(
        account=account,
        currency=currency,
        sequence=(last.sequence + 1) if last else 1,
        amount=amount,
        balance_after=balance + amount,
        kind=kind,
        description=description,
        reference=reference,
        created_by=actor if actor is not None and actor.pk else None,
    )


def _audit(entry: LedgerEntry, actor, action: str) -> None:
    audit_record(
        actor=actor,
        action=action,
        target=entry,
        account=entry.account,
        changes={
            "amount": str(entry.amount),
            "currency": entry.currency,
            "balance_after": str(entry.balance_after),
            "kind": entry.kind,
            "description": entry.description,
        },
    )


def ledger_credit(
    *, actor, account: Account, amount: Money, kind: str, description: str, reference: str = ""
) -> LedgerEntry:
    """Put credit on the account (seat decrease, refund as credit)."""
    amount = amount.rounded()
    if amount.amount <= 0:
        raise PortalError("A credit must be more than zero.", field="amount")
    if kind not in (LedgerEntry.Kind.SEAT_CREDIT, LedgerEntry.Kind.REFUND_CREDIT):
        raise PortalError(f"“{kind}” is not a kind of credit.", field="kind")
    with transaction.atomic():
        account = _lock(account)
        entry = _append(
            account=account,
            currency=amount.currency,
            amount=amount.amount,
            kind=kind,
            description=description,
            reference=reference,
            actor=actor,
        )
        _audit(entry, actor, "ledger.credited")
    return entry


def ledger_adjust(*, actor, account: Account, amount: Money, reason: str) -> LedgerEntry:
    """A staff correction, up or down (never below zero), with the reason the customer reads."""
    reason = clean_text(reason, field="description", label="a reason", max_length=300)
    amount = amount.rounded()
    if amount.amount == 0:
        raise PortalError("An adjustment must change the balance.", field="amount")
    with transaction.atomic():
        account = _lock(account)
        require_staff(actor, "billing.add_ledgerentry")
        entry = _append(
            account=account,
            currency=amount.currency,
            amount=amount.amount,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            description=reason,
            reference="",
            actor=actor,
        )
        _audit(entry, actor, "ledger.adjusted")
    return entry


def ledger_apply_to_charge(*, account: Account, charge: Money, reference: str, actor=None) -> Money:
    """Pay what credit allows of a charge; returns what is still to pay by other means."""
    charge = charge.rounded()
    if charge.amount <= 0:
        return Money.zero(charge.currency)
    with transaction.atomic():
        account = _lock(account)
        last = (
            LedgerEntry.objects.filter(account=account, currency=charge.currency)
            .order_by("-sequence")
            .only("balance_after")
            .first()
        )
        take = min(last.balance_after if last else Decimal(0), charge.amount)
        if take > 0:
            entry = _append(
                account=account,
                currency=charge.currency,
                amount=-take,
                kind=LedgerEntry.Kind.APPLIED,
                description=f"Applied to {reference}",
                reference=reference,
                actor=actor,
            )
            _audit(entry, actor, "ledger.applied")
    return Money(charge.amount - take, charge.currency)


# --- orders, payments and subscriptions ----------------------------------------------


def _require_billing_role(*, actor, account: Account) -> None:
    """Owners and billing admins act on billing; staff may act from the console."""
    if actor is not None and actor.is_staff and actor.has_perm("billing.change_subscription"):
        return
    if not account_selectors.acts_on_billing(user=actor, account=account):
        raise NotAllowed("Only owners and billing admins can change billing.")


def account_today(account: Account, now=None) -> date:
    """Today in the account's zone: windows and periods are counted in its local dates."""
    return timezone.localtime(now or timezone.now(), account.tzinfo).date()


def _sync_seats_paid(account: Account, *, actor) -> None:
    """Seats paid are the users of the account's perpetual licences (on-premise), or
    else the quantity of its live per-seat plan (1CRM terms)."""
    from .licences import licensed_users

    seats = licensed_users(account)
    if seats is None:
        seats = (
            Subscription.objects.plans()
            .filter(
                account=account,
                status__in=[Subscription.Status.ACTIVE, Subscription.Status.TRIALING],
                price__scheme=Price.Scheme.PER_SEAT,
            )
            .aggregate(total=Sum("quantity"))["total"]
        )
    if seats is not None and seats != account.seats_paid:
        old = account.seats_paid
        Account.objects.filter(pk=account.pk).update(seats_paid=seats)
        account.seats_paid = seats
        audit_record(
            actor=actor,
            action="account.seats_paid_changed",
            target=account,
            account=account,
            changes={"seats_paid": [old, seats], "by": "subscription"},
        )


def seats_paid_owned_by_plan(account: Account) -> str | None:
    """Registered with accounts: staff do not set seats paid by hand once a plan owns them."""
    from .licences import licensed_users

    if licensed_users(account) is not None:
        return "Seats paid follow the account's licences: buy or renounce licensed users."
    if (
        Subscription.objects.plans()
        .filter(account=account)
        .exclude(status=Subscription.Status.CANCELLED)
        .exists()
    ):
        return "Seats paid follow the account's plan: change the seats on its subscription."
    return None


def plan_keeps_licence_screen(account: Account) -> str | None:
    """Registered with accounts: no active account without a live plan once it had one."""
    newest = Subscription.objects.plans().filter(account=account).order_by("-created_at").first()
    if newest is not None and newest.status in (
        Subscription.Status.LAPSED,
        Subscription.Status.CANCELLED,
    ):
        return (
            f"The account's plan is {newest.get_status_display().lower()}: it stays on the "
            "licence screen until a plan is paid (1CRM terms)."
        )
    return None


def _place_order(
    *, account, actor, now, changes: dict, line: dict | None = None, lines: list | None = None
) -> Order:
    """Order one or more lines (audited), paid in one payment: credit pays first, the
    gateway the rest after commit. An order that credit covers in full is paid, and
    delivered, at once.
    """
    lines = lines if lines is not None else [line]
    currency = account.currency if lines[0].get("price") is None else lines[0]["price"].currency
    amount = Money(sum((item["amount"] for item in lines), Decimal(0)), currency)
    order = _create_order(account=account, currency=currency, lines=lines, actor=actor, now=now)
    audit_record(
        actor=actor, action="order.created", target=order, account=account, changes=changes
    )
    left = ledger_apply_to_charge(
        account=account, charge=amount, reference=order.number, actor=actor
    )
    order.credit_applied = amount.amount - left.amount
    order.save(update_fields=["credit_applied"])
    if left.amount == 0:
        _mark_paid(order, actor=actor, now=now)
    else:
        _charge_on_commit(order)
    return order


def _create_order(*, account, currency, lines, actor, now) -> Order:
    total = sum((line["amount"] for line in lines), Decimal(0))
    order = Order.objects.create(
        account=account,
        number=f"tmp-{secrets.token_hex(6)}",
        currency=currency,
        status=Order.Status.AWAITING_PAYMENT,
        total=total,
        created_at=now,
        created_by=actor if actor is not None and actor.pk else None,
    )
    order.number = f"ORD-{now:%Y}-{order.pk:06d}"
    order.save(update_fields=["number"])
    for line in lines:
        OrderLine.objects.create(order=order, **line)
    return order


def _set_quantity(subscription: Subscription, quantity: int, *, actor, reason: str) -> None:
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


# Functions (order, actor, now) called when an order is paid, registered by the apps
# built on billing (support opens an extra incident once it is paid).
ORDER_PAID_HOOKS: list = []
# Functions (order, actor) called when an unpaid order is cancelled.
ORDER_CANCELLED_HOOKS: list = []


def _mark_paid(order: Order, *, actor, now) -> None:
    """The order is paid: what it bought is the account's at once (delivery policy §1-2)."""
    order.status = Order.Status.PAID
    order.paid_at = now
    order.save(update_fields=["status", "paid_at"])
    from .purchases import DELIVERED_ON_PAYMENT, deliver_line

    def hold(line: OrderLine, why: str) -> None:
        entry = _append(
            account=order.account,
            currency=order.currency,
            amount=line.amount,
            kind=LedgerEntry.Kind.ORDER_CANCELLED,
            description=f"{order.number}: {line.description} {why}: held as credit",
            reference=order.number,
            actor=actor,
        )
        _audit(entry, actor, "ledger.credited")

    lines = list(order.lines.select_related("order__account", "product"))
    support_held = False
    # Subscriptions first: a licence is issued only if the support it needs applies.
    for line in sorted(lines, key=lambda item: item.subscription_id is None):
        if line.effect in DELIVERED_ON_PAYMENT:
            if support_held and line.kind == Product.Kind.PERPETUAL_LICENSE and line.amount:
                # 1CRM terms: users added later must include their support.
                hold(line, "could not be issued without its support")
                continue
            deliver_line(line, actor=actor, now=now)
            continue
        if not line.subscription_id:
            continue
        subscription = Subscription.objects.select_for_update().get(pk=line.subscription_id)
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
            _set_quantity(
                subscription,
                subscription.quantity + line.quantity,
                actor=actor,
                reason=f"{order.number} paid",
            )
        elif line.effect in (OrderLine.Effect.RENEW, OrderLine.Effect.START):
            _renewed(subscription, line, actor=actor, order=order, now=now)
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
    _sync_seats_paid(order.account, actor=actor)
    for hook in ORDER_PAID_HOOKS:  # apps above billing deliver what they sold
        hook(order=order, actor=actor, now=now)
    audit_record(
        actor=actor,
        action="order.paid",
        target=order,
        account=order.account,
        changes={"total": str(order.total), "credit_applied": str(order.credit_applied)},
    )


def idempotency_key(order: Order, attempt: int | str) -> str:
    """The key a gateway sees: unique to this installation, the order and the attempt, so
    that two portals sharing a Stripe account, or a rebuilt database, never collide."""
    install = hashlib.sha256(f"portal-install:{settings.SECRET_KEY}".encode()).hexdigest()[:10]
    return f"{install}-order-{order.pk}-{attempt}"


def _charge_on_commit(order: Order, *, attempt: int = 1) -> Payment | None:
    """Ask the gateway for what credit did not cover, by a job once the order is committed."""
    from .tasks import request_payment

    due = order.amount_due
    if due <= 0:
        return None
    payment = Payment.objects.create(
        account=order.account,
        order=order,
        gateway=get_gateway().name,
        amount=due,
        currency=order.currency,
        idempotency_key=idempotency_key(order, attempt),
    )
    request_payment.delay_on_commit(payment.pk)
    return payment


def payment_retry(*, actor, order: Order) -> Payment:
    """Charge an order again after its payment failed (a new card, say): a new attempt
    with its own key, never while another attempt may still succeed."""
    with transaction.atomic():
        account = _lock(order.account)
        _require_billing_role(actor=actor, account=account)
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status != Order.Status.AWAITING_PAYMENT:
            raise PortalError(
                f"{order.number} is {order.get_status_display().lower()}.", field="order"
            )
        if get_gateway().name == "manual":
            raise PortalError(
                f"{order.number} is paid by bank transfer quoting its number; our billing team "
                "records it.",
                field="order",
            )
        attempts = list(order.payments.values_list("status", flat=True))
        if Payment.Status.PENDING in attempts:
            raise PortalError(
                f"A payment of {order.number} is still in progress; wait for its result.",
                field="order",
            )
        payment = _charge_on_commit(order, attempt=len(attempts) + 1)
        audit_record(
            actor=actor,
            action="payment.retried",
            target=order,
            account=account,
            changes={"attempt": len(attempts) + 1, "amount": str(order.amount_due)},
        )
    return payment


def payment_request(*, payment_id: int) -> Payment:
    """Call the gateway for a pending payment; no transaction is held during the call."""
    payment = Payment.objects.select_related("order", "account").get(pk=payment_id)
    if payment.status != Payment.Status.PENDING or payment.reference:
        return payment
    if payment.order.status != Order.Status.AWAITING_PAYMENT:
        # Paid another way (or cancelled) while this job waited: charge nothing.
        return payment_failed(
            payment=payment,
            message=f"{payment.order.number} is {payment.order.get_status_display().lower()}; "
            "nothing was charged.",
        )
    result = get_gateway(payment.gateway).charge(
        account=payment.account,
        amount=Money(payment.amount, payment.currency),
        idempotency_key=payment.idempotency_key,
        description=payment.order.number,
        payment_id=payment.pk,
    )
    if result.status == "succeeded":
        return payment_succeeded(payment=payment, reference=result.reference, actor=None)
    if result.status == "failed":
        return payment_failed(payment=payment, message=result.message)
    return payment


def payment_failed(*, payment: Payment, message: str) -> Payment:
    """The gateway refused; a payment already recorded as succeeded stays so."""
    with transaction.atomic():
        _lock(payment.account)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status != Payment.Status.PENDING:
            return payment
        payment.status = Payment.Status.FAILED
        payment.failure_message = message[:300]
        payment.save(update_fields=["status", "failure_message"])
        audit_record(
            actor=None,
            action="payment.failed",
            target=payment,
            account=payment.account,
            changes={"amount": str(payment.amount), "message": payment.failure_message},
        )
    return payment


def _hold_as_credit(
    payment: Payment, order: Order, *, status, kind, description, action, reference, actor, now
) -> Payment:
    """Money the gateway took that the order cannot use: record it, and hold it as the
    customer's credit rather than lose track of it. The caller holds the locks."""
    payment.status = status
    payment.reference = reference
    payment.succeeded_at = now
    payment.save(update_fields=["status", "reference", "succeeded_at"])
    entry = _append(
        account=order.account,
        currency=payment.currency,
        amount=payment.amount,
        kind=kind,
        description=description,
        reference=reference or order.number,
        actor=actor,
    )
    _audit(entry, actor, "ledger.credited")
    audit_record(
        actor=actor,
        action=action,
        target=payment,
        account=order.account,
        changes={"amount": str(payment.amount), "reference": reference},
    )
    return payment


def payment_succeeded(*, payment: Payment, reference: str, actor, now=None) -> Payment:
    now = now or timezone.now()
    with transaction.atomic():
        _lock(payment.account)  # the account first, as every billing change does
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status in (Payment.Status.SUCCEEDED, Payment.Status.DUPLICATE):
            return payment  # a replayed notification changes nothing
        if payment.gateway != "manual" and (
            order.status == Order.Status.PAID
            or order.payments.filter(status=Payment.Status.SUCCEEDED).exists()
        ):
            # Another payment paid the order first (staff recorded a bank transfer, say)
            # and the gateway took the money too.
            return _hold_as_credit(
                payment,
                order,
                status=Payment.Status.DUPLICATE,
                kind=LedgerEntry.Kind.DUPLICATE_PAYMENT,
                description=f"{order.number} paid twice: payment {reference} held as credit",
                action="payment.duplicate",
                reference=reference,
                actor=actor,
                now=now,
            )
        if order.status == Order.Status.CANCELLED and payment.gateway != "manual":
            # The gateway took the money after the order was withdrawn.
            return _hold_as_credit(
                payment,
                order,
                status=Payment.Status.SUCCEEDED,
                kind=LedgerEntry.Kind.ORDER_CANCELLED,
                description=f"Payment for cancelled {order.number} held as credit",
                action="payment.succeeded_after_cancel",
                reference=reference,
                actor=actor,
                now=now,
            )
        if order.status != Order.Status.AWAITING_PAYMENT:
            raise PortalError(f"{order.number} is {order.get_status_display().lower()}.")
        payment.status = Payment.Status.SUCCEEDED
        payment.reference = reference
        payment.succeeded_at = now
        payment.save(update_fields=["status", "reference", "succeeded_at"])
        audit_record(
            actor=actor,
            action="payment.succeeded",
            target=payment,
            account=order.account,
            changes={"amount": str(payment.amount), "reference": reference},
        )
        _mark_paid(order, actor=actor, now=now)
    return payment


def payment_record_manual(*, actor, order: Order, reference: str, now=None) -> Payment:
    """Staff record an outside payment (bank transfer...) for an order awaiting it."""
    reference = clean_text(
        reference, field="reference", label="the payment's reference", max_length=120
    )
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "billing.change_payment")
        _lock(order.account)
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status != Order.Status.AWAITING_PAYMENT:
            raise PortalError(f"{order.number} is {order.get_status_display().lower()}.")
        # A gateway's pending payment is left alone: if it succeeds too, it becomes credit.
        payment = Payment.objects.filter(
            order=order, status=Payment.Status.PENDING, gateway="manual"
        ).first()
        if payment is None:
            payment = Payment.objects.create(
                account=order.account,
                order=order,
                gateway="manual",
                amount=order.amount_due,
                currency=order.currency,
                idempotency_key=idempotency_key(order, "manual"),
            )
        return payment_succeeded(payment=payment, reference=reference, actor=actor, now=now)


def order_cancel(*, actor, order: Order, now=None) -> Order:
    """Withdraw an unpaid order: its pending payment is dropped and its credit returned."""
    with transaction.atomic():
        account = _lock(order.account)
        _require_billing_role(actor=actor, account=account)
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status != Order.Status.AWAITING_PAYMENT:
            raise PortalError(
                f"{order.number} is {order.get_status_display().lower()}; only an unpaid order "
                "can be cancelled."
            )
        if order.lines.filter(effect=OrderLine.Effect.USAGE).exists():
            raise PortalError(
                f"{order.number} charges usage already consumed: it cannot be cancelled. Write "
                "to billing if a line is wrong.",
                field="order",
            )
        _cancel_locked(order, account=account, actor=actor, reason="cancelled")
    return order


def _cancel_locked(order: Order, *, account: Account, actor, reason: str) -> None:
    """Cancel an unpaid order; the caller holds the account's and the order's locks."""
    for hook in ORDER_CANCELLED_HOOKS:  # apps above billing withdraw what it was for
        hook(order=order, actor=actor)
    Payment.objects.filter(order=order, status=Payment.Status.PENDING).update(
        status=Payment.Status.FAILED, failure_message=f"Order {reason}."
    )
    if order.credit_applied > 0:
        entry = _append(
            account=account,
            currency=order.currency,
            amount=order.credit_applied,
            kind=LedgerEntry.Kind.ORDER_CANCELLED,
            description=f"Credit returned from {order.number} ({reason})",
            reference=order.number,
            actor=actor,
        )
        _audit(entry, actor, "ledger.credited")
    order.status = Order.Status.CANCELLED
    order.save(update_fields=["status"])
    audit_record(
        actor=actor,
        action="order.cancelled",
        target=order,
        account=account,
        changes={"credit_returned": str(order.credit_applied), "reason": reason},
    )
    # A plan waiting for its first payment never starts; one waiting for its renewal
    # ends (it stays on the licence screen, and a new plan can be started).
    for line in order.lines.select_related("subscription"):
        subscription = line.subscription
        if subscription is None:
            continue
        if line.kind == Product.Kind.SUPPORT_CONTRACT and line.effect == OrderLine.Effect.RENEW:
            continue  # support stays expired, and can be renewed again
        if (line.effect, subscription.status) in (
            (OrderLine.Effect.START, Subscription.Status.PENDING),
            (OrderLine.Effect.RENEW, Subscription.Status.LAPSED),
        ):
            old = subscription.status
            subscription.status = Subscription.Status.CANCELLED
            subscription.pending_price = None
            subscription.save(update_fields=["status", "pending_price"])
            audit_record(
                actor=actor,
                action="subscription.ended",
                target=subscription,
                account=account,
                changes={"status": [old, "cancelled"], "order": order.number},
            )


def _cancel_open_changes(subscription: Subscription, *, account: Account, reason: str) -> None:
    """Unpaid seat or plan changes were priced for the period that is ending: void them."""
    # Ids first: PostgreSQL does not lock rows of a DISTINCT query.
    ids = set(
        Order.objects.filter(
            status=Order.Status.AWAITING_PAYMENT,
            lines__subscription=subscription,
            lines__effect__in=[OrderLine.Effect.ADD_SEATS, OrderLine.Effect.CHANGE_PLAN],
        ).values_list("pk", flat=True)
    )
    orders = Order.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    for order in orders:
        _cancel_locked(order, account=account, actor=None, reason=reason)


def _lock_subscription(subscription: Subscription) -> Subscription:
    """Lock the plan's row only (its joins are nullable); the account is locked first."""
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("price__product", "account__reseller")
        .get(pk=subscription.pk)
    )


def _require_previewed(amount: Money, expected: Money | None, *, field: str) -> None:
    """A confirmation goes through only at the amount the customer was shown."""
    if expected is not None and expected != amount:
        raise PortalError(
            f"The amount changed since your preview: it is now {amount}. "
            "Preview again to confirm it.",
            field=field,
        )


def _open_order_for(subscription: Subscription) -> Order | None:
    return (
        Order.objects.filter(status=Order.Status.AWAITING_PAYMENT, lines__subscription=subscription)
        .order_by("pk")
        .first()
    )


def _require_plan(subscription: Subscription, *, field: str) -> None:
    """Seats and plan changes are the plan's; support follows the licences (1CRM terms)."""
    if subscription.price.product.kind != Product.Kind.SUBSCRIPTION:
        raise PortalError(
            f"{subscription.price.product.name} is not the account's plan: its seats and "
            "price do not change here.",
            field=field,
        )


def subscription_seat_quote(
    *, subscription: Subscription, quantity, today, now=None
) -> SeatChangeQuote:
    """What a seat change would cost or credit, refusing every change the rules refuse."""
    account = subscription.account
    _require_plan(subscription, field="quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise PortalError("Give a whole number of seats, at least 1.", field="quantity")
    if account.reseller_id:
        raise PortalError(
            f"{account.name}'s billing is provided by {account.reseller.name}: ask them to "
            "change your seats.",
            field="quantity",
        )
    if subscription.price.scheme != Price.Scheme.PER_SEAT:
        raise PortalError("This plan is not priced per seat.", field="quantity")
    if subscription.status not in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
        raise PortalError(
            f"The subscription is {subscription.get_status_display().lower()}; renew it first.",
            field="quantity",
        )
    if today >= subscription.current_period_end:
        raise PortalError(
            f"The period ended on {subscription.current_period_end:%d %B %Y}; renew the "
            "subscription before changing its seats.",
            field="quantity",
        )
    open_order = _open_order_for(subscription)
    if open_order is not None:
        raise PortalError(
            f"Order {open_order.number} awaits payment; pay or cancel it before another change.",
            field="quantity",
        )
    if quantity < subscription.quantity:
        usage = account_selectors.seat_usage(account=account, now=now or timezone.now())
        if usage.used > quantity:
            raise PortalError(
                f"{usage.describe()}: take seats from members or withdraw invitations "
                f"before going down to {quantity}.",
                field="quantity",
            )
    quote = seat_change_quote(
        unit_price=Money(subscription.price.amount, subscription.price.currency),
        current=subscription.quantity,
        new=quantity,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        today=today,
    )
    if subscription.status == Subscription.Status.TRIALING:
        # Nothing was paid for a trial: its seats change without a charge or a credit.
        quote = replace(quote, amount=Money.zero(quote.amount.currency), trial=True)
    return quote


def subscription_change_seats(
    *,
    actor,
    subscription: Subscription,
    quantity: int,
    expected_amount: Money | None = None,
    now=None,
) -> tuple[Subscription, SeatChangeQuote, Order | None]:
    """Add seats (charged at once, pro rata) or remove them (credited, pro rata). 1CRM terms.

    `expected_amount` is what the customer saw in the preview: if the quote moved
    since (a new day began), nothing changes and they are shown the new one.
    """
    now = now or timezone.now()
    with transaction.atomic():
        account = _lock(subscription.account)
        _require_billing_role(actor=actor, account=account)
        subscription = _lock_subscription(subscription)
        today = account_today(account, now)
        quote = subscription_seat_quote(
            subscription=subscription, quantity=quantity, today=today, now=now
        )
        _require_previewed(quote.amount, expected_amount, field="quantity")
        order = None
        if quote.kind == "none":
            return subscription, quote, None
        if quote.kind == "credit" or quote.amount.amount == 0:
            _set_quantity(subscription, quantity, actor=actor, reason=quote.kind)
            if quote.kind == "credit" and quote.amount.amount > 0:
                entry = _append(
                    account=account,
                    currency=quote.amount.currency,
                    amount=quote.amount.amount,
                    kind=LedgerEntry.Kind.SEAT_CREDIT,
                    description=f"{-quote.delta} seat(s) removed on {today:%d %B %Y}",
                    reference=f"subscription:{subscription.pk}",
                    actor=actor,
                )
                _audit(entry, actor, "ledger.credited")
            _sync_seats_paid(account, actor=actor)
        else:
            order = _place_order(
                account=account,
                line={
                    "product": subscription.price.product,
                    "price": subscription.price,
                    "subscription": subscription,
                    "kind": Product.Kind.SUBSCRIPTION,
                    "description": (
                        f"{quote.delta} more seat(s) of {subscription.price.product.name}, "
                        f"{quote.period_start:%d %b} to {quote.period_end:%d %b %Y}"
                    ),
                    "quantity": quote.delta,
                    "amount": quote.amount.amount,
                    "period_start": quote.period_start,
                    "period_end": quote.period_end,
                    "first_purchase": False,
                    "effect": OrderLine.Effect.ADD_SEATS,
                },
                actor=actor,
                now=now,
                changes={"seats": [quote.current, quantity], "total": str(quote.amount)},
            )
    subscription.refresh_from_db()
    return subscription, quote, order


# --- cancel and renew ------------------------------------------------------------------


def subscription_set_cancel_at_period_end(
    *, actor, subscription: Subscription, cancel: bool
) -> Subscription:
    """Cancel (access to the end of the paid period, no renewal, no refund of unused
    time: 1CRM terms, acelle §6), or take the cancellation back before the period ends."""
    with transaction.atomic():
        account = _lock(subscription.account)
        _require_billing_role(actor=actor, account=account)
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.status not in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
            raise PortalError(
                f"The subscription is {subscription.get_status_display().lower()}.",
                field="cancel_at_period_end",
            )
        if account.reseller_id:
            raise PortalError(
                f"{account.name}'s billing is provided by {account.reseller.name}.",
                field="cancel_at_period_end",
            )
        if subscription.cancel_at_period_end == cancel:
            return subscription
        subscription.cancel_at_period_end = cancel
        subscription.save(update_fields=["cancel_at_period_end"])
        audit_record(
            actor=actor,
            action="subscription.cancelled" if cancel else "subscription.cancellation_withdrawn",
            target=subscription,
            account=account,
            changes={"cancel_at_period_end": [not cancel, cancel]},
        )
    return subscription


def next_period_end(start: date, interval: str) -> date:
    """The same day one month or one year on; the 31st becomes the month's last day."""
    months = 1 if interval == Price.Interval.MONTH else 12
    year, month = divmod(start.month - 1 + months, 12)
    year, month = start.year + year, month + 1
    for day in (start.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise ValueError(start)


def _renewed(subscription: Subscription, line: OrderLine, *, actor, order: Order, now) -> None:
    today = account_today(subscription.account, now)
    is_support = subscription.price.product.kind == Product.Kind.SUPPORT_CONTRACT
    if is_support and line.effect == OrderLine.Effect.RENEW:
        # A support renewal covers the period it was quoted for, in arrears when late
        # (1CRM terms); renewing for fewer users renounces the excess licences.
        from .licences import renounce_excess

        renounce_excess(
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
    subscription.status = Subscription.Status.ACTIVE
    # A downgrade waiting for this cycle takes effect with it (acelle §6).
    subscription.price = line.price
    subscription.pending_price = None
    subscription.save(
        update_fields=[
            "current_period_start",
            "current_period_end",
            "status",
            "price",
            "pending_price",
        ]
    )
    audit_record(
        actor=actor,
        action="subscription.renewed",
        target=subscription,
        account=subscription.account,
        changes={"period": [str(line.period_start), str(line.period_end)], "order": order.number},
    )
    if subscription.price.product.kind == Product.Kind.SUBSCRIPTION:
        account_services.account_set_licence_screen(
            account=subscription.account, on=False, reason=f"{order.number} paid", actor=actor
        )


def subscription_renew(*, subscription: Subscription, now=None) -> Subscription:
    """At the end of a period: end a cancelled plan, or order and charge the next period.

    Until the renewal is paid the plan is lapsed and the account on the licence screen
    (1CRM terms). Safe to run twice: a lapsed plan waits for its renewal order.
    """
    now = now or timezone.now()
    with transaction.atomic():
        account = _lock(subscription.account)
        subscription = _lock_subscription(subscription)
        today = account_today(account, now)
        if today < subscription.current_period_end or subscription.status in (
            Subscription.Status.CANCELLED,
            Subscription.Status.LAPSED,
        ):
            return subscription
        _cancel_open_changes(subscription, account=account, reason="voided at period end")
        kind = subscription.price.product.kind
        is_plan = kind == Product.Kind.SUBSCRIPTION
        if kind == Product.Kind.SUPPORT_CONTRACT and not subscription.cancel_at_period_end:
            # Support is optional after the first year (1CRM terms): it expires unless the
            # customer renews; a late renewal runs from this date (billing.licences).
            subscription.status = Subscription.Status.LAPSED
            subscription.save(update_fields=["status"])
            audit_record(
                actor=None,
                action="support.expired",
                target=subscription,
                account=account,
                changes={"expired_on": str(subscription.current_period_end)},
            )
            return subscription
        if subscription.cancel_at_period_end:
            subscription.status = Subscription.Status.CANCELLED
            subscription.pending_price = None
            subscription.save(update_fields=["status", "pending_price"])
            audit_record(
                actor=None,
                action="subscription.ended",
                target=subscription,
                account=account,
                changes={"status": ["active", "cancelled"]},
            )
            if is_plan:
                account_services.account_set_licence_screen(
                    account=account, on=True, reason="subscription ended"
                )
            return subscription
        price = subscription.pending_price or subscription.price
        first_paid = subscription.status == Subscription.Status.TRIALING
        start = subscription.current_period_end
        end = next_period_end(start, price.interval)
        seats = subscription.quantity if price.scheme == Price.Scheme.PER_SEAT else 1
        amount = Money(price.amount * seats, price.currency).rounded()
        order = _place_order(
            account=account,
            line={
                "product": price.product,
                "price": price,
                "subscription": subscription,
                "kind": kind,
                "description": (
                    f"{price.product.name}, {seats} seat(s), {start:%d %b %Y} to {end:%d %b %Y}"
                ),
                "quantity": seats,
                "amount": amount.amount,
                "period_start": start,
                "period_end": end,
                "first_purchase": first_paid,
                "effect": OrderLine.Effect.RENEW,
            },
            actor=None,
            now=now,
            changes={"renewal": [str(start), str(end)], "total": str(amount)},
        )
        if order.status != Order.Status.PAID:
            subscription.status = Subscription.Status.LAPSED
            subscription.save(update_fields=["status"])
            audit_record(
                actor=None,
                action="subscription.lapsed",
                target=subscription,
                account=account,
                changes={"awaiting": order.number},
            )
            if is_plan:
                account_services.account_set_licence_screen(
                    account=account, on=True, reason=f"renewal {order.number} awaits payment"
                )

    subscription.refresh_from_db()
    return subscription


def subscriptions_renew_due(*, now=None) -> int:
    """The beat job's work: every plan whose period ended in its account's local date."""
    now = now or timezone.now()
    changed = 0
    # A day of margin: accounts in zones ahead of UTC reach the date first.
    due = Subscription.objects.filter(
        status__in=[Subscription.Status.ACTIVE, Subscription.Status.TRIALING],
        current_period_end__lte=now.date() + timedelta(days=1),
    ).values_list("pk", flat=True)
    for pk in due:
        before = Subscription.objects.get(pk=pk)
        try:
            after = subscription_renew(subscription=before, now=now)
        except Exception:
            # One plan's failure must not hold back every other renewal; the next run retries.
            logger.exception("Renewal of subscription %s failed", pk)
            continue
        changed += (after.current_period_end, after.status) != (
            before.current_period_end,
            before.status,
        )
    return changed


# --- plan changes ------------------------------------------------------------------------


def _plan_total(price: Price, quantity: int) -> Money:
    seats = quantity if price.scheme == Price.Scheme.PER_SEAT else 1
    return Money(price.amount * seats, price.currency)


def subscription_plan_quote(
    *, subscription: Subscription, price: Price, today, now=None
) -> PlanChangeQuote:
    account = subscription.account
    _require_plan(subscription, field="price")
    if account.reseller_id:
        raise PortalError(
            f"{account.name}'s billing is provided by {account.reseller.name}: ask them to "
            "change your plan.",
            field="price",
        )
    if subscription.status != Subscription.Status.ACTIVE:
        raise PortalError(
            f"The subscription is {subscription.get_status_display().lower()}; plans change "
            "on an active subscription.",
            field="price",
        )
    if (
        not price.is_active
        or price.product.kind != Product.Kind.SUBSCRIPTION
        or price.currency != subscription.price.currency
        or price.interval != subscription.price.interval
        or price.scheme != subscription.price.scheme
    ):
        raise PortalError(
            "Choose a plan billed in the same currency and at the same interval.", field="price"
        )
    if today >= subscription.current_period_end:
        raise PortalError("The period has ended; renew the subscription first.", field="price")
    open_order = _open_order_for(subscription)
    if open_order is not None:
        raise PortalError(
            f"Order {open_order.number} awaits payment; pay or cancel it before another change.",
            field="price",
        )
    return plan_change_quote(
        current_name=subscription.price.product.name,
        new_name=price.product.name,
        current_total=_plan_total(subscription.price, subscription.quantity),
        new_total=_plan_total(price, subscription.quantity),
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        today=today,
        same_plan=price.pk == subscription.price_id,
        downgrade_pending=subscription.pending_price_id is not None,
    )


def subscription_change_plan(
    *,
    actor,
    subscription: Subscription,
    price: Price,
    expected_amount: Money | None = None,
    now=None,
) -> tuple[Subscription, PlanChangeQuote, Order | None]:
    """Upgrade now (difference pro rata, charged at once) or downgrade at the next cycle."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _lock(subscription.account)
        _require_billing_role(actor=actor, account=account)
        subscription = _lock_subscription(subscription)
        price = Price.objects.select_related("product").get(pk=price.pk)
        quote = subscription_plan_quote(
            subscription=subscription, price=price, today=account_today(account, now), now=now
        )
        _require_previewed(quote.amount, expected_amount, field="price")
        order = None
        if quote.kind == "none":
            return subscription, quote, None
        if quote.kind == "stay":
            withdrawn = subscription.pending_price
            subscription.pending_price = None
            subscription.save(update_fields=["pending_price"])
            audit_record(
                actor=actor,
                action="subscription.downgrade_withdrawn",
                target=subscription,
                account=account,
                changes={"pending_price": [str(withdrawn), None]},
            )
            return subscription, quote, None
        if quote.kind == "downgrade":
            subscription.pending_price = price
            subscription.save(update_fields=["pending_price"])
            audit_record(
                actor=actor,
                action="subscription.downgrade_scheduled",
                target=subscription,
                account=account,
                changes={
                    "price": [str(subscription.price), str(price)],
                    "from": str(subscription.current_period_end),
                },
            )
        else:
            order = _place_order(
                account=account,
                line={
                    "product": price.product,
                    "price": price,
                    "subscription": subscription,
                    "kind": Product.Kind.SUBSCRIPTION,
                    "description": (
                        f"Upgrade to {price.product.name}, {quote.period_start:%d %b} to "
                        f"{quote.period_end:%d %b %Y}"
                    ),
                    "quantity": subscription.quantity,
                    "amount": quote.amount.amount,
                    "period_start": quote.period_start,
                    "period_end": quote.period_end,
                    "first_purchase": False,
                    "effect": OrderLine.Effect.CHANGE_PLAN,
                },
                actor=actor,
                now=now,
                changes={
                    "upgrade": [str(subscription.price), str(price)],
                    "total": str(quote.amount),
                },
            )
    subscription.refresh_from_db()
    return subscription, quote, order


# --- starting a plan -------------------------------------------------------------------


def _live_subscription(account: Account) -> Subscription | None:
    return (
        Subscription.objects.plans()
        .filter(account=account)
        .exclude(status=Subscription.Status.CANCELLED)
        .first()
    )


def trial_available(account: Account) -> bool:
    """A trial is for an account's first plan only."""
    return not Subscription.objects.plans().filter(account=account).exists()


def subscription_start(
    *, actor, account: Account, price: Price, quantity: int, trial: bool = False, now=None
) -> tuple[Subscription, Order | None]:
    """Start a plan: a free trial (first plan only), or the first period paid now.

    Access begins the moment the first payment succeeds (delivery policy §1-2).
    """
    now = now or timezone.now()
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise PortalError("Give a whole number of seats, at least 1.", field="quantity")
    with transaction.atomic():
        account = _lock(account)
        _require_billing_role(actor=actor, account=account)
        if account.reseller_id:
            raise PortalError(
                f"{account.name}'s billing is provided by {account.reseller.name}.", field="price"
            )
        from .licences import licensed_users

        if licensed_users(account) is not None:
            raise PortalError(
                f"{account.name} is licensed on-premise; a cloud plan needs a separate account.",
                field="price",
            )
        live = _live_subscription(account)
        if live is not None:
            raise PortalError(
                f"{account.name} already has a plan ({live.get_status_display().lower()}); "
                "change it instead.",
                field="price",
            )
        price = Price.objects.select_related("product").get(pk=price.pk)
        if (
            not price.is_active
            or price.product.kind != Product.Kind.SUBSCRIPTION
            or price.interval not in (Price.Interval.MONTH, Price.Interval.YEAR)
            or price.currency != account.currency
        ):
            raise PortalError(
                f"Choose a monthly or yearly plan billed in {account.currency}.", field="price"
            )
        seats = quantity if price.scheme == Price.Scheme.PER_SEAT else 1
        usage = account_selectors.seat_usage(account=account, now=now)
        if price.scheme == Price.Scheme.PER_SEAT and usage.used > seats:
            raise PortalError(
                f"{usage.describe()}: start with at least {usage.used} seats.", field="quantity"
            )
        if trial and not trial_available(account):
            raise PortalError("The free trial is for an account's first plan.", field="trial")
        today = account_today(account, now)
        if trial:
            end = today + timedelta(days=settings.BILLING_TRIAL_DAYS)
            subscription = Subscription.objects.create(
                account=account,
                price=price,
                quantity=seats,
                status=Subscription.Status.TRIALING,
                current_period_start=today,
                current_period_end=end,
                trial_end=end,
            )
            audit_record(
                actor=actor,
                action="subscription.trial_started",
                target=subscription,
                account=account,
                changes={"price": str(price), "trial_end": str(end)},
            )
            _sync_seats_paid(account, actor=actor)
            return subscription, None
        end = next_period_end(today, price.interval)
        amount = Money(price.amount * seats, price.currency).rounded()
        subscription = Subscription.objects.create(
            account=account,
            price=price,
            quantity=seats,
            status=Subscription.Status.PENDING,
            current_period_start=today,
            current_period_end=end,
        )
        order = _place_order(
            account=account,
            line={
                "product": price.product,
                "price": price,
                "subscription": subscription,
                "kind": Product.Kind.SUBSCRIPTION,
                "description": (
                    f"{price.product.name}, {seats} seat(s), {today:%d %b %Y} to {end:%d %b %Y}"
                ),
                "quantity": seats,
                "amount": amount.amount,
                "period_start": today,
                "period_end": end,
                "first_purchase": True,
                "effect": OrderLine.Effect.START,
            },
            actor=actor,
            now=now,
            changes={"start": str(price), "total": str(amount)},
        )
        audit_record(
            actor=actor,
            action="subscription.started",
            target=subscription,
            account=account,
            changes={"price": str(price), "order": order.number, "total": str(amount)},
        )
    subscription.refresh_from_db()
    return subscription, order
