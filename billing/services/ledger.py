"""The account's credit ledger: credits in, applied to charges oldest first, never below zero.

Credits arrive from seat decreases (1CRM terms: "an immediate non-refundable credit to
the client account balance, which will automatically be applied against future
charges"), from refunds paid as credit, and from staff adjustments; they are applied
to later charges, oldest first.
"""

from decimal import Decimal

from django.db import transaction

from accounts.errors import PortalError
from accounts.models import Account
from accounts.services import audit_record, clean_text, require_staff

from ..locks import lock_account
from ..models import LedgerEntry, Order
from ..money import Money
from .documents import credit_note_for_credit


def ledger_append(*, account, currency, amount: Decimal, kind, description, reference, actor):
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


def ledger_audit(entry: LedgerEntry, actor, action: str) -> None:
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


def ledger_post(
    *, account, currency, amount: Decimal, kind, description, reference, actor
) -> LedgerEntry:
    """Append a credit and audit it; the caller holds the account's row lock."""
    entry = ledger_append(
        account=account,
        currency=currency,
        amount=amount,
        kind=kind,
        description=description,
        reference=reference,
        actor=actor,
    )
    ledger_audit(entry, actor, "ledger.credited")
    return entry


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
        account = lock_account(account)
        return ledger_post(
            account=account,
            currency=amount.currency,
            amount=amount.amount,
            kind=kind,
            description=description,
            reference=reference,
            actor=actor,
        )


def ledger_adjust(
    *, actor, account: Account, amount: Money, reason: str, order_number: str | None = None
) -> LedgerEntry:
    """A staff correction, up or down (never below zero), with the reason the customer reads.
    A credit tied to a paid order (`order_number`) gets a credit note naming its invoice."""
    reason = clean_text(reason, field="description", label="a reason", max_length=300)
    amount = amount.rounded()
    if amount.amount == 0:
        raise PortalError("An adjustment must change the balance.", field="amount")
    with transaction.atomic():
        account = lock_account(account)
        require_staff(actor, "billing.add_ledgerentry")
        order = None
        if order_number:
            order = Order.objects.filter(account=account, number=order_number.strip()).first()
            if order is None or order.status != Order.Status.PAID:
                raise PortalError(
                    f"{order_number} is not a paid order of {account.name}.", field="order"
                )
            if amount.amount < 0 or amount.currency != order.currency:
                raise PortalError(
                    f"A correction of {order.number} is a credit in {order.currency}.",
                    field="amount",
                )
        entry = ledger_append(
            account=account,
            currency=amount.currency,
            amount=amount.amount,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            description=reason,
            reference=order.number if order else "",
            actor=actor,
        )
        ledger_audit(entry, actor, "ledger.adjusted")
        if order is not None:
            credit_note_for_credit(
                order=order,
                line=None,
                amount=amount.amount,
                reason=reason,
                key=f"ledger:{entry.pk}",
            )
    return entry


def ledger_apply_to_charge(*, account: Account, charge: Money, reference: str, actor=None) -> Money:
    """Pay what credit allows of a charge; returns what is still to pay by other means."""
    charge = charge.rounded()
    if charge.amount <= 0:
        return Money.zero(charge.currency)
    with transaction.atomic():
        account = lock_account(account)
        last = (
            LedgerEntry.objects.filter(account=account, currency=charge.currency)
            .order_by("-sequence")
            .only("balance_after")
            .first()
        )
        take = min(last.balance_after if last else Decimal(0), charge.amount)
        if take > 0:
            entry = ledger_append(
                account=account,
                currency=charge.currency,
                amount=-take,
                kind=LedgerEntry.Kind.APPLIED,
                description=f"Applied to {reference}",
                reference=reference,
                actor=actor,
            )
            ledger_audit(entry, actor, "ledger.applied")
    return Money(charge.amount - take, charge.currency)
