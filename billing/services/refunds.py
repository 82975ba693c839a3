"""What a purchase has had back, and what a refund takes back.

Refunds (the app) decides and pays; billing owns the money state: `refund_record`
writes every amount that came back on an order line, to the original payment or as
account credit, in the transaction of the payout's success, and `refund_take_back`
takes back what the refunded lines delivered (acelle §2, §3, §5). Nothing else writes
a line's or a payment's `refunded`.
"""

import math
from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import Account
from accounts.services import audit_record

from ..locks import lock_account, lock_order_lines, lock_payment, lock_subscription
from ..models import LedgerEntry, Licence, LineRefund, OrderLine, Payment, Product
from ..money import Money
from .ledger import ledger_post
from .licences import licence_revoke
from .seats import seats_paid_sync
from .subscription_state import subscription_end


def refund_record(
    *,
    actor,
    account: Account,
    method: str,
    amounts: dict[int, Decimal],
    reference: str,
    key: str,
    payment: Payment | None = None,
    now=None,
) -> list[LineRefund]:
    """Record money that came back on lines of one order: `amounts` per line id, to the
    original `payment` or as account credit (which this puts on the ledger).

    Never more than what is left of a line or of the payment: the rows are locked and
    checked here, and the database refuses it too. The same `key` twice records once.
    """
    now = now or timezone.now()
    if method not in LineRefund.Method.values:
        raise PortalError(f"“{method}” is not a way money comes back.", field="method")
    if (method == LineRefund.Method.ORIGINAL) != (payment is not None):
        raise PortalError("A refund to the original payment names the payment.", field="payment")
    with transaction.atomic():
        account = lock_account(account)
        done = list(LineRefund.objects.filter(key=key).order_by("pk"))
        if done:
            return done  # recorded already: a replay moves nothing
        lines = lock_order_lines(amounts)
        if len(lines) != len(amounts) or not lines:
            raise PortalError("Name the purchases the money came back on.", field="lines")
        orders = {line.order_id for line in lines.values()}
        if len(orders) != 1 or next(iter(lines.values())).order.account_id != account.pk:
            raise PortalError("A refund is recorded on the lines of one order.", field="lines")
        order = next(iter(lines.values())).order
        values = {}
        for pk, amount in amounts.items():
            value = Money(amount, order.currency).rounded().amount
            line = lines[pk]
            if value <= 0:
                raise PortalError("A refund must be more than zero.", field="amount")
            if value > line.refundable_left:
                raise PortalError(
                    f"“{line.description}” has {Money(line.refundable_left, order.currency)} "
                    f"left to refund: {Money(value, order.currency)} cannot come back on it.",
                    field="amount",
                )
            values[pk] = value
        total = sum(values.values(), Decimal(0))
        if payment is not None:
            payment = lock_payment(payment)
            if payment.order_id != order.pk or payment.status != Payment.Status.SUCCEEDED:
                raise PortalError(
                    f"{order.number}'s money came back on a payment that did not pay it.",
                    field="payment",
                )
            if total > payment.amount - payment.refunded:
                raise PortalError(
                    f"The payment of {order.number} has "
                    f"{Money(payment.amount - payment.refunded, order.currency)} left to "
                    f"refund: {Money(total, order.currency)} cannot come back on it.",
                    field="amount",
                )
            Payment.objects.filter(pk=payment.pk).update(refunded=F("refunded") + total)
        else:
            ledger_post(
                account=account,
                currency=order.currency,
                amount=total,
                kind=LedgerEntry.Kind.REFUND_CREDIT,
                description=f"Refund {reference} as account credit",
                reference=reference,
                actor=actor,
            )
        rows = []
        for pk, value in values.items():
            line = lines[pk]
            rows.append(
                LineRefund.objects.create(
                    line=line,
                    payment=payment,
                    method=method,
                    amount=value,
                    currency=order.currency,
                    reference=reference,
                    key=key,
                    created_at=now,
                    created_by=actor if actor is not None and actor.pk else None,
                )
            )
            OrderLine.objects.filter(pk=pk).update(refunded=F("refunded") + value)
            audit_record(
                actor=actor,
                action="order_line.refunded",
                target=line,
                account=account,
                changes={
                    "amount": str(value),
                    "method": method,
                    "reference": reference,
                    "refunded": str(line.refunded + value),
                    "of": str(line.amount),
                },
            )
    return rows


def refund_take_back(
    *, actor, account: Account, line_ids: Iterable[int], reference: str, now=None
) -> list[str]:
    """A processed refund takes back what the refunded lines delivered, per kind; returns
    what it took, in words. Safe to run twice.

    - a credit pack loses its unused units: all of them once refunded in full, else the
      units the money paid back bought (rounded up), never units already used;
    - a one-off quota add-on is deactivated;
    - a line that paid for a subscription (the plan, a premium feature, a recurring
      add-on, support) ends it (acelle §5: the SaaS plan ends with its refund);
    - a licence or plugin key is revoked (acelle §5).
    """
    now = now or timezone.now()
    taken: list[str] = []
    with transaction.atomic():
        account = lock_account(account)
        for line in lock_order_lines(line_ids).values():
            if line.order.account_id != account.pk or line.refunded <= 0:
                continue
            took = _take_back_line(line, actor=actor, reference=reference, now=now)
            if took and line.taken_back_at is None:
                line.taken_back_at = now
                line.save(update_fields=["taken_back_at"])
            taken += took
        seats_paid_sync(account, actor=actor)
    return taken


def _take_back_line(line: OrderLine, *, actor, reference: str, now) -> list[str]:
    took = []
    in_full = line.refunded >= line.amount
    if line.kind == Product.Kind.CREDIT_PACK and line.units:
        paid_back = math.ceil(line.refunded * line.units / line.amount) if line.amount else 0
        units = (
            line.units_left if in_full else min(line.units_left, paid_back - line.units_refunded)
        )
        if units > 0:
            line.units_refunded += units
            line.save(update_fields=["units_refunded"])
            audit_record(
                actor=actor,
                action="credits.taken_back",
                target=line,
                account=line.order.account,
                changes={"units": units, "left": line.units_left, "refund": reference},
            )
            took.append(f"{units:,} unused credits of {line.description}")
    if (
        line.kind == Product.Kind.QUOTA_ADDON
        and line.subscription_id is None
        and line.activated_at
        and line.taken_back_at is None
    ):
        audit_record(
            actor=actor,
            action="order_line.deactivated",
            target=line,
            account=line.order.account,
            changes={"refund": reference},
        )
        took.append(f"{line.description}, deactivated")
    if line.subscription_id is not None:
        subscription = lock_subscription(line.subscription_id)
        if subscription_end(subscription, actor=actor, changes={"refund": reference}):
            took.append(f"{subscription.price.product.name}, ended")
    if line.kind in (Product.Kind.PERPETUAL_LICENSE, Product.Kind.PLUGIN):
        licence = Licence.objects.filter(line=line, status=Licence.Status.ACTIVE).first()
        if licence is not None:
            licence_revoke(licence=licence, actor=actor, reason=f"refund {reference}", now=now)
            took.append(f"the licence key of {line.description}, revoked")
    return took
