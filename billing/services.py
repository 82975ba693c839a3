"""Every state change of billing. This first part: the credit ledger.

Credits arrive from seat decreases (1CRM terms: "an immediate non-refundable
credit to the client account balance, which will automatically be applied
against future charges"), from refunds paid as credit, and from staff
adjustments; they are applied to later charges, oldest first.
"""

import secrets
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.errors import NotAllowed, PortalError
from accounts.models import Account, Membership
from accounts.services import audit_record, clean_text, require_staff

from .gateways import get_gateway
from .models import LedgerEntry, Order, OrderLine, Payment, Price, Product, Subscription
from .money import Money
from .quotes import SeatChangeQuote, seat_change_quote


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
    allowed = Membership.objects.filter(
        account=account,
        user=actor,
        is_active=True,
        role__in=[Membership.Role.OWNER, Membership.Role.BILLING_ADMIN],
    ).exists()
    if not allowed:
        raise NotAllowed("Only owners and billing admins can change billing.")


def account_today(account: Account, now=None) -> date:
    """Today in the account's zone: windows and periods are counted in its local dates."""
    return timezone.localtime(now or timezone.now(), account.tzinfo).date()


def _sync_seats_paid(account: Account) -> None:
    """Seats paid are the quantity of the account's live per-seat plan (1CRM terms)."""
    seats = Subscription.objects.filter(
        account=account,
        status__in=[Subscription.Status.ACTIVE, Subscription.Status.TRIALING],
        price__scheme=Price.Scheme.PER_SEAT,
        price__product__kind=Product.Kind.SUBSCRIPTION,
    ).aggregate(total=Sum("quantity"))["total"]
    if seats is not None and seats != account.seats_paid:
        old = account.seats_paid
        Account.objects.filter(pk=account.pk).update(seats_paid=seats)
        account.seats_paid = seats
        audit_record(
            actor=None,
            action="account.seats_paid_changed",
            target=account,
            account=account,
            changes={"seats_paid": [old, seats], "by": "subscription"},
        )


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


def _mark_paid(order: Order, *, actor, now) -> None:
    """The order is paid: what it bought is the account's at once (delivery policy §1-2)."""
    order.status = Order.Status.PAID
    order.paid_at = now
    order.save(update_fields=["status", "paid_at"])
    for line in order.lines.select_related("subscription"):
        if line.subscription_id and line.kind == Product.Kind.SUBSCRIPTION:
            subscription = Subscription.objects.select_for_update().get(pk=line.subscription_id)
            subscription.quantity += line.quantity
            subscription.save(update_fields=["quantity"])
    _sync_seats_paid(order.account)
    audit_record(
        actor=actor,
        action="order.paid",
        target=order,
        account=order.account,
        changes={"total": str(order.total), "credit_applied": str(order.credit_applied)},
    )


def _charge_on_commit(order: Order) -> None:
    """Ask the gateway for what credit did not cover, after the order is committed."""
    due = order.amount_due
    if due <= 0:
        return
    payment = Payment.objects.create(
        account=order.account,
        order=order,
        gateway=get_gateway().name,
        amount=due,
        currency=order.currency,
        idempotency_key=f"order-{order.pk}-1",
    )
    transaction.on_commit(lambda: payment_request(payment_id=payment.pk))


def payment_request(*, payment_id: int) -> Payment:
    """Call the gateway for a pending payment (no transaction is held during the call)."""
    payment = Payment.objects.select_related("order", "account").get(pk=payment_id)
    if payment.status != Payment.Status.PENDING or payment.reference:
        return payment
    result = get_gateway(payment.gateway).charge(
        account=payment.account,
        amount=Money(payment.amount, payment.currency),
        idempotency_key=payment.idempotency_key,
        description=payment.order.number,
    )
    if result.status == "succeeded":
        return payment_succeeded(payment=payment, reference=result.reference, actor=None)
    if result.status == "failed":
        Payment.objects.filter(pk=payment.pk).update(
            status=Payment.Status.FAILED, failure_message=result.message[:300]
        )
    return payment


def payment_succeeded(*, payment: Payment, reference: str, actor, now=None) -> Payment:
    now = now or timezone.now()
    with transaction.atomic():
        _lock(payment.account)  # the account first, as every billing change does
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status == Payment.Status.SUCCEEDED:
            return payment
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
        if order.status == Order.Status.AWAITING_PAYMENT:
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
        payment = Payment.objects.filter(order=order, status=Payment.Status.PENDING).first()
        if payment is None:
            payment = Payment.objects.create(
                account=order.account,
                order=order,
                gateway="manual",
                amount=order.amount_due,
                currency=order.currency,
                idempotency_key=f"order-{order.pk}-manual",
            )
        return payment_succeeded(payment=payment, reference=reference, actor=actor, now=now)


def subscription_seat_quote(*, subscription: Subscription, quantity, today) -> SeatChangeQuote:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise PortalError("Give a whole number of seats, at least 1.", field="quantity")
    if subscription.price.scheme != Price.Scheme.PER_SEAT:
        raise PortalError("This plan is not priced per seat.", field="quantity")
    if subscription.status not in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
        raise PortalError(
            f"The subscription is {subscription.get_status_display().lower()}; renew it first.",
            field="quantity",
        )
    return seat_change_quote(
        unit_price=Money(subscription.price.amount, subscription.price.currency),
        current=subscription.quantity,
        new=quantity,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        today=today,
    )


def subscription_change_seats(
    *, actor, subscription: Subscription, quantity: int, now=None
) -> tuple[Subscription, SeatChangeQuote, Order | None]:
    """Add seats (charged at once, pro rata) or remove them (credited, pro rata). 1CRM terms."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _lock(subscription.account)
        _require_billing_role(actor=actor, account=account)
        subscription = (
            Subscription.objects.select_for_update()
            .select_related("price__product")
            .get(pk=subscription.pk)
        )
        today = account_today(account, now)
        quote = subscription_seat_quote(subscription=subscription, quantity=quantity, today=today)
        order = None
        if quote.kind == "credit":
            usage = account_selectors.seat_usage(account=account, now=now)
            if usage.used > quantity:
                raise PortalError(
                    f"{usage.describe()}: take seats from members or withdraw invitations "
                    f"before going down to {quantity}.",
                    field="quantity",
                )
            subscription.quantity = quantity
            subscription.save(update_fields=["quantity"])
            if quote.amount.amount > 0:
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
            _sync_seats_paid(account)
        elif quote.kind == "charge":
            order = _create_order(
                account=account,
                currency=quote.amount.currency,
                lines=[
                    {
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
                    }
                ],
                actor=actor,
                now=now,
            )
            left = ledger_apply_to_charge(
                account=account, charge=quote.amount, reference=order.number, actor=actor
            )
            order.credit_applied = quote.amount.amount - left.amount
            order.save(update_fields=["credit_applied"])
            if left.amount == 0:
                _mark_paid(order, actor=actor, now=now)
            else:
                _charge_on_commit(order)
        else:
            return subscription, quote, None
        audit_record(
            actor=actor,
            action="subscription.seats_changed",
            target=subscription,
            account=account,
            changes={"quantity": [quote.current, quantity], quote.kind: str(quote.amount)},
        )
    subscription.refresh_from_db()
    return subscription, quote, order
