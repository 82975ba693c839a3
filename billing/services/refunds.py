"""What a purchase has had back, and what a refund takes back.

Refunds (the app) decides and pays; billing owns the money state: `refund_record`
writes every amount that came back on an order line, to the original payment or as
account credit, in the transaction of the payout's success, and `refund_take_back`
takes back what the refunded lines delivered (acelle §2, §3, §5); `refund_hold_units`
takes a credit pack's units out of use as soon as a refund of them is agreed. Nothing
else writes a line's or a payment's `refunded`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import Account
from accounts.services import audit_record

from ..hooks import LINE_REFUNDED_HOOKS
from ..locks import lock_account, lock_order_lines, lock_payment, lock_subscription
from ..models import (
    LedgerEntry,
    Licence,
    LineRefund,
    Order,
    OrderLine,
    Payment,
    Product,
    Subscription,
)
from ..money import Money
from .credit_balance import credit_balance_move
from .documents import credit_note_for_refunds
from .ledger import ledger_post
from .licences import licence_revoke
from .seats import seats_paid_sync
from .subscription_state import subscription_end, subscription_set_quantity


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
                refund := LineRefund.objects.create(
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
            for hook in LINE_REFUNDED_HOOKS:  # the marketplace reverses a developer's share
                hook(line, refund)
        credit_note_for_refunds(rows, reason=f"Refund {reference}")
    return rows


@dataclass(frozen=True)
class TakeBack:
    taken: list[str]  # what was taken back, in words
    plan_ended: bool  # the SaaS plan's own period was refunded: the plan ended


def units_paid_back(line: OrderLine, back: Decimal) -> int:
    """The units of a credit pack that `back` of its price buys back: all its unused
    units once the whole price comes back, else the unit rate, rounded half up (the
    policy's unit-rate amount buys back exactly its units), never units already used."""
    if back >= line.amount:
        return line.units - line.units_used
    exact = (back * line.units / line.amount).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return min(int(exact), line.units - line.units_used)


def refund_hold_units(
    *, actor, account: Account, amounts: dict[int, Decimal], reference: str
) -> list[str]:
    """Once a refund is agreed, a credit pack's units it pays back leave use at once: the
    customer cannot spend them while the money is on its way (acelle §2.2: no refund of
    what is consumed). `amounts` is what the refund pays back per line."""
    taken = []
    with transaction.atomic():
        account = lock_account(account)
        for line in lock_order_lines(amounts).values():
            if line.kind != Product.Kind.CREDIT_PACK or not line.units:
                continue
            back = line.refunded + Decimal(amounts[line.pk])
            taken += _take_units(line, units_paid_back(line, back), actor=actor, ref=reference)
    return taken


def _take_units(line: OrderLine, target: int, *, actor, ref: str) -> list[str]:
    """Take the pack's units up to `target` taken in all (the caller holds its lock)."""
    units = min(line.units_left, target - line.units_refunded)
    if units <= 0:
        return []
    line.units_refunded += units
    line.save(update_fields=["units_refunded"])
    if line.order.status == Order.Status.PAID:
        credit_balance_move(
            account_id=line.order.account_id, product_id=line.product_id, refunded=units
        )
    audit_record(
        actor=actor,
        action="credits.taken_back",
        target=line,
        account=line.order.account,
        changes={"units": units, "left": line.units_left, "refund": ref},
    )
    return [f"{units:,} unused credits of {line.description}"]


def refund_take_back(
    *, actor, account: Account, line_ids: Iterable[int], reference: str, now=None
) -> TakeBack:
    """A processed refund takes back what the refunded lines delivered, per kind, and
    says what it took. Safe to run twice.

    A line whose whole price came back is taken back whole:
    - a one-off quota add-on is deactivated; a licence or plugin key is revoked (acelle
      §5); a premium feature, a recurring add-on or support ends;
    - the plan's own period (its start or renewal) ends the plan (acelle §5); seats
      added later are removed from it; an upgrade's difference leaves the plan as it is.
    Part of a price coming back (a billing error, an overcharge) corrects the price and
    takes nothing back, but for a credit pack, which loses the units the money bought.
    """
    now = now or timezone.now()
    taken: list[str] = []
    plan_ended = False
    with transaction.atomic():
        account = lock_account(account)
        for line in lock_order_lines(line_ids).values():
            if line.order.account_id != account.pk or line.refunded <= 0:
                continue
            if line.kind == Product.Kind.CREDIT_PACK and line.units:
                took = _take_units(
                    line, units_paid_back(line, line.refunded), actor=actor, ref=reference
                )
            elif line.taken_back_at is None and (
                line.refunded >= line.amount
                # onecloud §4: the prorated refund of an app's first cycle pays back its
                # unused part, so the cycle ends with it (a renewal's correction does not).
                or (
                    line.kind == Product.Kind.APP_SUBSCRIPTION
                    and line.effect == OrderLine.Effect.START
                    and line.first_purchase
                    and line.period_start == line.subscription.current_period_start
                )
            ):
                took, ended = _take_back_whole(line, actor=actor, reference=reference, now=now)
                plan_ended |= ended
            else:
                continue
            if (
                took
                and line.taken_back_at is None
                and (
                    line.refunded >= line.amount
                    or (
                        line.kind == Product.Kind.APP_SUBSCRIPTION
                        and line.effect == OrderLine.Effect.START
                    )
                )
            ):
                line.taken_back_at = now
                line.save(update_fields=["taken_back_at"])
            taken += took
        seats_paid_sync(account, actor=actor)
    return TakeBack(taken=taken, plan_ended=plan_ended)


def _take_back_whole(line: OrderLine, *, actor, reference: str, now) -> tuple[list[str], bool]:
    """Take back all a fully refunded line delivered; the caller holds the locks."""
    account = line.order.account
    if line.kind in Product.LICENSED_KINDS:
        licence = Licence.objects.filter(line=line, status=Licence.Status.ACTIVE).first()
        if licence is None:
            return [], False
        licence_revoke(licence=licence, actor=actor, reason=f"refund {reference}", now=now)
        return [f"the licence key of {line.description}, revoked"], False
    if line.subscription_id is None:
        if line.kind == Product.Kind.QUOTA_ADDON and line.activated_at:
            audit_record(
                actor=actor,
                action="order_line.deactivated",
                target=line,
                account=account,
                changes={"refund": reference},
            )
            return [f"{line.description}, deactivated"], False
        return [], False
    subscription = lock_subscription(line.subscription_id)
    if line.effect == OrderLine.Effect.ADD_SEATS:
        seats = max(subscription.quantity - line.quantity, 1)
        if seats == subscription.quantity or subscription.status == Subscription.Status.CANCELLED:
            return [], False
        subscription_set_quantity(subscription, seats, actor=actor, reason=f"refund {reference}")
        return [f"{line.quantity} seat(s) of {subscription.price.product.name}, removed"], False
    if line.effect == OrderLine.Effect.CHANGE_PLAN:
        return [], False  # the difference came back; the plan itself was paid for
    if not subscription_end(subscription, actor=actor, changes={"refund": reference}):
        return [], False
    plan = subscription.price.product.kind == Product.Kind.SUBSCRIPTION
    return [f"{subscription.price.product.name}, ended"], plan
