"""Payments: what credit did not cover goes to the gateway, with a key stored first.

`payment_request` holds no transaction while the gateway is called; a success settles
the order once (a replay changes nothing), and money the order cannot use is held as
the customer's credit, never lost.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.errors import PortalError
from accounts.services import audit_record, clean_text, require_staff
from core import outbox

from .. import tasks
from ..gateways import ChargeResult, get_gateway
from ..locks import lock_account, lock_order, lock_payment
from ..models import LedgerEntry, Order, Payment
from ..money import Money
from .common import require_billing_role
from .delivery import order_mark_paid
from .ledger import ledger_post
from .states import PAYMENT


def idempotency_key(order: Order, attempt: int | str) -> str:
    """The key a gateway sees: unique to this installation, the order and the attempt, so
    that two portals sharing a Stripe account, or a rebuilt database, never collide."""
    install = hashlib.sha256(f"portal-install:{settings.SECRET_KEY}".encode()).hexdigest()[:10]
    return f"{install}-order-{order.pk}-{attempt}"


def payment_charge_on_commit(order: Order, *, attempt: int = 1) -> Payment | None:
    """Ask the gateway for what credit did not cover, by a job once the order is committed."""
    payments = payments_charge_on_commit([order], attempt=attempt)
    return payments[0] if payments else None


def payments_charge_on_commit(orders: list[Order], *, attempt: int = 1) -> list[Payment]:
    """payment_charge_on_commit for several orders at once (a chunk of renewals): their
    payments in one INSERT and their jobs in another."""
    gateway = get_gateway().name
    payments = Payment.objects.bulk_create(
        [
            Payment(
                account=order.account,
                order=order,
                gateway=gateway,
                amount=order.amount_due,
                currency=order.currency,
                idempotency_key=idempotency_key(order, attempt),
            )
            for order in orders
            if order.amount_due > 0
        ]
    )
    if payments:
        outbox.enqueue_many(tasks.request_payment, [(payment.pk,) for payment in payments])
    return payments


def payment_retry(*, actor, order: Order) -> Payment:
    """Charge an order again after its payment failed (a new card, say): a new attempt
    with its own key, never while another attempt may still succeed."""
    with transaction.atomic():
        account = lock_account(order.account)
        require_billing_role(actor=actor, account=account)
        order = lock_order(order)
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
        payment = payment_charge_on_commit(order, attempt=len(attempts) + 1)
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
        lock_account(payment.account)
        payment = lock_payment(payment)
        if payment.status != Payment.Status.PENDING:
            return payment
        payment.failure_message = message[:300]
        order = payment.order
        recover = order.status == Order.Status.AWAITING_PAYMENT and payment.gateway != "manual"
        if recover:
            # Payment recovery: the next automatic try, while the schedule lasts.
            failed = order.payments.filter(status=Payment.Status.FAILED).count() + 1
            days = settings.BILLING_PAYMENT_RETRY_DAYS
            if failed <= len(days):
                payment.next_attempt_at = timezone.now() + timedelta(days=days[failed - 1])
        PAYMENT.move(
            payment,
            Payment.Status.FAILED,
            actor=None,
            action="payment.failed",
            changes={
                "amount": str(payment.amount),
                "message": payment.failure_message,
                "next_attempt_at": str(payment.next_attempt_at or ""),
            },
            also=["failure_message", "next_attempt_at"],
        )
        if recover:
            outbox.enqueue(tasks.send_payment_failed_email, payment.pk)
    return payment


def payments_retry_due(*, now=None) -> int:
    """The beat job: charge again each order whose failed payment's retry is due. Each
    retry once (the failed payment's `next_attempt_at` is cleared as it is made)."""
    now = now or timezone.now()
    made = 0
    due = Payment.objects.filter(
        status=Payment.Status.FAILED, next_attempt_at__lte=now
    ).values_list("pk", "account_id")
    for pk, account_id in due:
        with transaction.atomic():
            lock_account(account_id)
            payment = lock_payment(pk)
            if payment.next_attempt_at is None or payment.next_attempt_at > now:
                continue
            payment.next_attempt_at = None
            payment.save(update_fields=["next_attempt_at"])
            order = lock_order(payment.order_id)
            attempts = list(order.payments.values_list("status", flat=True))
            if order.status != Order.Status.AWAITING_PAYMENT or Payment.Status.PENDING in attempts:
                continue
            payment_charge_on_commit(order, attempt=len(attempts) + 1)
            audit_record(
                actor=None,
                action="payment.retried_automatically",
                target=order,
                account=order.account,
                changes={"attempt": len(attempts) + 1, "after": payment.pk},
            )
            made += 1
    return made


def payment_hold_as_credit(
    payment: Payment, order: Order, *, status, kind, description, action, reference, actor, now
) -> Payment:
    """Money the gateway took that the order cannot use: record it, and hold it as the
    customer's credit rather than lose track of it. The caller holds the locks."""
    payment.reference = reference
    payment.succeeded_at = now
    PAYMENT.move(
        payment,
        status,
        actor=actor,
        action=action,
        account=order.account,
        changes={"amount": str(payment.amount), "reference": reference},
        also=["reference", "succeeded_at"],
    )
    ledger_post(
        account=order.account,
        currency=payment.currency,
        amount=payment.amount,
        kind=kind,
        description=description,
        reference=reference or order.number,
        actor=actor,
    )
    return payment


def payment_succeeded(*, payment: Payment, reference: str, actor, now=None) -> Payment:
    now = now or timezone.now()
    with transaction.atomic():
        lock_account(payment.account)  # the account first, as every billing change does
        order = lock_order(payment.order_id)
        payment = lock_payment(payment)
        if payment.status in (Payment.Status.SUCCEEDED, Payment.Status.DUPLICATE):
            return payment  # a replayed notification changes nothing
        if payment.gateway != "manual" and (
            order.status == Order.Status.PAID
            or order.payments.filter(status=Payment.Status.SUCCEEDED).exists()
        ):
            # Another payment paid the order first (staff recorded a bank transfer, say)
            # and the gateway took the money too.
            return payment_hold_as_credit(
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
            return payment_hold_as_credit(
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
        payment.reference = reference
        payment.succeeded_at = now
        PAYMENT.move(
            payment,
            Payment.Status.SUCCEEDED,
            actor=actor,
            action="payment.succeeded",
            account=order.account,
            changes={"amount": str(payment.amount), "reference": reference},
            also=["reference", "succeeded_at"],
        )
        order_mark_paid(order, actor=actor, now=now)
    return payment


def payment_refund_at_gateway(
    *, payment: Payment, amount: Money, idempotency_key: str, metadata: dict
) -> ChargeResult:
    """Ask the payment's gateway to give back `amount` of it. Call outside any transaction,
    with the key already stored: the same key never refunds twice."""
    return get_gateway(payment.gateway).refund(
        charge_reference=payment.reference,
        amount=amount,
        idempotency_key=idempotency_key,
        metadata=metadata,
    )


def payment_record_manual(*, actor, order: Order, reference: str, now=None) -> Payment:
    """Staff record an outside payment (bank transfer...) for an order awaiting it."""
    reference = clean_text(
        reference, field="reference", label="the payment's reference", max_length=120
    )
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "billing.change_payment")
        lock_account(order.account)
        order = lock_order(order)
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
