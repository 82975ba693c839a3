"""Orders: one or more lines bought at one moment, paid in one payment, credit first.

An order that credit covers in full is paid, and delivered, at once; the rest goes to
the gateway after commit. An unpaid order can be withdrawn and its credit comes back.
"""

import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction

from accounts.errors import PortalError
from accounts.models import Account
from accounts.services import audit_record

from ..hooks import ORDER_CANCELLED_HOOKS
from ..locks import lock_account, lock_order
from ..models import LedgerEntry, Order, OrderLine, Payment, Product, Subscription
from ..money import Money
from ..selectors import account_today, ledger_balance
from ..tax import TaxTerms, lines_with_tax
from .common import require_billing_role
from .delivery import order_mark_paid
from .ledger import ledger_apply_to_charge, ledger_post
from .payments import payment_charge_on_commit
from .states import ORDER, PAYMENT
from .subscription_state import subscription_end


def order_place(
    *,
    account,
    actor,
    now,
    changes: dict,
    line: dict | None = None,
    lines: list | None = None,
    terms: TaxTerms | None = None,
    balance: Money | None = None,
) -> Order:
    """Order one or more lines (audited), paid in one payment: credit pays first, the
    gateway the rest after commit. An order that credit covers in full is paid, and
    delivered, at once. The caller holds the account's lock.

    `terms` and `balance` are the account's tax terms and credit balance when the caller
    has read them already (renewals read them for a whole chunk, the balance under the
    account's lock); without them they are read here.
    """
    totals = order_totals(
        account=account,
        lines=lines if lines is not None else [line],
        today=account_today(account, now),
        terms=terms,
        balance=balance,
    )
    order = order_create(
        account=account,
        currency=totals.currency,
        lines=totals.lines,
        actor=actor,
        now=now,
    )
    audit_record(
        actor=actor, action="order.created", target=order, account=account, changes=changes
    )
    if totals.credit.amount > 0 or totals.total.amount <= 0:
        left = ledger_apply_to_charge(
            account=account, charge=totals.total, reference=order.number, actor=actor
        )
        order.credit_applied = totals.total.amount - left.amount
        order.save(update_fields=["credit_applied"])
    else:
        # No credit under the account's lock (order_totals read it): nothing to apply.
        left = totals.total
    if left.amount == 0:
        order_mark_paid(order, actor=actor, now=now)
    else:
        payment_charge_on_commit(order)
    return order


@dataclass(frozen=True)
class OrderTotals:
    """Every amount an order charges: what a preview shows and what order_place books."""

    lines: list  # the line dicts, `amount` with its tax
    net: Money
    tax: Money
    tax_name: str
    total: Money  # net and tax
    credit: Money  # what the account's credit pays of it
    due: Money  # what is left to pay by card or transfer

    @property
    def currency(self) -> str:
        return self.total.currency


def order_totals(
    *,
    account: Account,
    lines: list[dict],
    today,
    terms: TaxTerms | None = None,
    balance: Money | None = None,
) -> OrderTotals:
    """The order's amounts, computed once for the preview and for the order itself."""
    currency = account.currency if lines[0].get("price") is None else lines[0]["price"].currency
    # Tax from the buyer's billing country on the order's day, part of what is charged.
    taxed = lines_with_tax(account, lines, today, terms=terms)
    total = Money(sum((item["amount"] for item in taxed), Decimal(0)), currency).rounded()
    tax = Money(sum((item.get("tax_amount", Decimal(0)) for item in taxed), Decimal(0)), currency)
    names = {item["tax_name"] for item in taxed if item.get("tax_name")}
    # Credit pays first, as far as it goes (ledger_apply_to_charge takes the same share).
    if balance is None or balance.currency != currency:
        balance = ledger_balance(account=account, currency=currency)
    credit = Money(
        min(max(balance.amount, Decimal(0)), max(total.amount, Decimal(0))), currency
    ).rounded()
    return OrderTotals(
        lines=taxed,
        net=(total - tax).rounded(),
        tax=tax.rounded(),
        tax_name=", ".join(sorted(names)),
        total=total,
        credit=credit,
        due=(total - credit).rounded(),
    )


def order_create(*, account, currency, lines, actor, now) -> Order:
    order = _new_order(account, currency, lines, actor, now)
    prefix = _number_prefix(now)
    if connection.vendor == "postgresql":
        _insert_numbered(order, prefix)
    else:
        order.number = f"tmp-{secrets.token_hex(6)}"
        order.save(force_insert=True)
        order.number = f"{prefix}{order.pk:06d}"
        order.save(update_fields=["number"])
    for line in lines:
        OrderLine.objects.create(order=order, **line)
    return order


def orders_create_many(*, orders: list[tuple[Account, str, list[dict]]], actor, now) -> list:
    """order_create for several orders at once, each (account, currency, lines): the
    orders in one INSERT, numbered from their ids as order_create numbers them, and all
    their lines in another (a chunk of renewals)."""
    made = [_new_order(account, currency, lines, actor, now) for account, currency, lines in orders]
    if not made:
        return made
    prefix = _number_prefix(now)
    if connection.vendor == "postgresql":
        # The ids taken from the table's sequence first, so each insert carries its number.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Order._meta.db_table, len(made)],
            )
            for order, (pk,) in zip(made, cursor.fetchall(), strict=True):
                order.pk, order.number = pk, f"{prefix}{pk:06d}"
        Order.objects.bulk_create(made)
    else:
        for order in made:
            order.number = f"tmp-{secrets.token_hex(6)}"
        Order.objects.bulk_create(made)
        for order in made:
            order.number = f"{prefix}{order.pk:06d}"
        Order.objects.bulk_update(made, ["number"])
    OrderLine.objects.bulk_create(
        OrderLine(order=order, **line)
        for order, (_, _, lines) in zip(made, orders, strict=True)
        for line in lines
    )
    return made


def _new_order(account, currency, lines, actor, now) -> Order:
    return Order(
        account=account,
        currency=currency,
        status=Order.Status.AWAITING_PAYMENT,
        total=sum((line["amount"] for line in lines), Decimal(0)),
        created_at=now,
        created_by=actor if actor is not None and actor.pk else None,
    )


def _number_prefix(now) -> str:
    # The number is the year and the order's id (ORD-2026-000042).
    return f"ORD-{now:%Y}-"


def _insert_numbered(order: Order, prefix: str) -> None:
    """Insert `order` with its number in the one statement (PostgreSQL): the id is taken
    from the table's sequence first and the number made from it, as `{prefix}{id:06d}`
    would be. Every other column as Django would write it."""
    quote = connection.ops.quote_name
    fields = [f for f in Order._meta.concrete_fields if f.name not in ("id", "number")]
    values = [f.get_db_prep_save(f.pre_save(order, add=True), connection) for f in fields]
    table = Order._meta.db_table
    # Only the model's own table and column names are spliced in; every value is a parameter.
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (
        "WITH n AS (SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS id) "  # noqa: S608
        f"INSERT INTO {quote(table)} (id, number, {columns}) "
        "SELECT n.id, %s || lpad(n.id::text, greatest(6, length(n.id::text)), '0'), "
        f"{placeholders} FROM n RETURNING id, number"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [table, prefix, *values])
        order.pk, order.number = cursor.fetchone()
    order._state.adding = False
    order._state.db = connection.alias


def order_cancel(*, actor, order: Order, now=None) -> Order:
    """Withdraw an unpaid order: its pending payment is dropped and its credit returned."""
    with transaction.atomic():
        account = lock_account(order.account)
        require_billing_role(actor=actor, account=account)
        order = lock_order(order)
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
        order_cancel_locked(order, account=account, actor=actor, reason="cancelled")
    return order


def order_cancel_locked(order: Order, *, account: Account, actor, reason: str) -> None:
    """Cancel an unpaid order; the caller holds the account's and the order's locks."""
    for hook in ORDER_CANCELLED_HOOKS:  # apps above billing withdraw what it was for
        hook(order=order, actor=actor)
    for payment in Payment.objects.select_for_update(no_key=True).filter(
        order=order, status=Payment.Status.PENDING
    ):
        payment.failure_message = f"Order {reason}."
        PAYMENT.move(
            payment,
            Payment.Status.FAILED,
            actor=actor,
            action="payment.voided",
            account=account,
            changes={"message": payment.failure_message},
            also=["failure_message"],
        )
    if order.credit_applied > 0:
        ledger_post(
            account=account,
            currency=order.currency,
            amount=order.credit_applied,
            kind=LedgerEntry.Kind.ORDER_CANCELLED,
            description=f"Credit returned from {order.number} ({reason})",
            reference=order.number,
            actor=actor,
        )
    ORDER.move(
        order,
        Order.Status.CANCELLED,
        actor=actor,
        action="order.cancelled",
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
            subscription_end(subscription, actor=actor, changes={"order": order.number})
