"""Invoices and credit notes: numbered without a gap in the transaction that issues them,
immutable once issued, keeping the seller and the buyer as they were that day.

Every paid order gets an invoice (delivery.order_mark_paid). Every amount given back on
an invoiced order gets a credit note naming that invoice: a refund to the card or as
credit (refunds.refund_record), a seat decrease's credit, a staff credit tied to an
order. Corrections are only ever credit notes.
"""

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account
from accounts.services import audit_record
from core import outbox

from .. import tasks
from ..models import (
    BillingDetails,
    CreditNote,
    CreditNoteLine,
    DocumentSequence,
    Invoice,
    InvoiceLine,
    LineRefund,
    Order,
    OrderLine,
    Payment,
)
from ..money import Money


def seller_snapshot() -> dict:
    return {
        "name": settings.VENDOR_LEGAL_NAME,
        "address": list(settings.VENDOR_ADDRESS),
        "tax_id": settings.VENDOR_TAX_ID,
        "email": settings.VENDOR_BILLING_EMAIL,
    }


def buyer_snapshot(account: Account) -> dict:
    details = BillingDetails.objects.filter(account=account).first()
    if details is None:
        return {"name": account.name, "address": [], "tax_id": "", "po_reference": ""}
    return details.snapshot()


def document_number(series: str, year: int) -> str:
    """The next number of a series, taken under the sequence row's lock in the caller's
    transaction: a rollback returns it, so numbers have no gap and are never reused."""
    try:
        with transaction.atomic():
            DocumentSequence.objects.get_or_create(series=series, year=year)
    except IntegrityError:
        pass  # another transaction created the year's row first
    sequence = DocumentSequence.objects.select_for_update().get(series=series, year=year)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return f"{series}-{year}-{sequence.last:06d}"


def _unit_price(line: OrderLine) -> Decimal:
    net = line.amount - line.tax_amount
    if not line.quantity:
        return net
    return (net / line.quantity).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _payment_words(payment: Payment | None) -> tuple[str, str]:
    if payment is None:
        return "Account credit", ""
    method = {"stripe": "Card (Stripe)", "manual": "Payment recorded by our billing team"}.get(
        payment.gateway, payment.gateway.title()
    )
    return method, payment.reference


def invoice_issue(order: Order, *, now=None) -> Invoice:
    """The invoice of a paid order, once; its receipt is mailed after commit."""
    existing = Invoice.objects.filter(order=order).first()
    if existing is not None:
        return existing
    now = now or order.paid_at or timezone.now()
    payment = (
        Payment.objects.filter(order=order, status=Payment.Status.SUCCEEDED).order_by("pk").first()
    )
    method, reference = _payment_words(payment)
    lines = list(order.lines.order_by("pk"))
    total = sum((line.amount for line in lines), Decimal(0))
    tax_total = sum((line.tax_amount for line in lines), Decimal(0))
    subtotal = total - tax_total
    invoice = Invoice.objects.create(
        number=document_number("INV", timezone.localtime(now, order.account.tzinfo).year),
        account=order.account,
        order=order,
        issued_at=now,
        currency=order.currency,
        seller=seller_snapshot(),
        buyer=buyer_snapshot(order.account),
        subtotal=subtotal,
        tax_total=tax_total,
        total=total,
        credit_applied=order.credit_applied,
        amount_paid=total - order.credit_applied,
        payment_method=method if total > order.credit_applied else "Account credit",
        payment_reference=reference,
        paid_at=order.paid_at or now,
    )
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                invoice=invoice,
                order_line=line,
                description=line.description,
                period_start=line.period_start,
                period_end=line.period_end - timedelta(days=1) if line.period_end else None,
                quantity=line.quantity,
                unit_price=_unit_price(line),
                amount=line.amount - line.tax_amount,
                tax_name=line.tax_name,
                tax_rate=line.tax_rate,
                tax_amount=line.tax_amount,
                total=line.amount,
            )
            for line in lines
        ]
    )
    audit_record(
        actor=None,
        action="invoice.issued",
        target=invoice,
        account=order.account,
        changes={"order": order.number, "total": str(invoice.total)},
    )
    outbox.enqueue(tasks.send_receipt_email, invoice.pk)
    return invoice


def invoice_for(order: Order) -> Invoice | None:
    """The order's invoice; a paid order from before invoices gets its own now."""
    if order.status != Order.Status.PAID:
        return None
    return Invoice.objects.filter(order=order).first() or invoice_issue(order)


def credit_note_issue(
    *,
    order: Order,
    amounts: dict[int, Decimal],
    to_card: bool,
    reason: str,
    reference: str,
    key: str,
    now=None,
) -> CreditNote | None:
    """A credit note for `amounts` (per order line) given back on `order`: to the card or
    to the balance. Once per key. None when the order was never paid (nothing invoiced)."""
    done = CreditNote.objects.filter(key=key).first()
    if done is not None:
        return done
    invoice = invoice_for(order)
    if invoice is None:
        return None
    now = now or timezone.now()
    lines = {line.order_line_id: line for line in invoice.lines.all()}
    total = sum(amounts.values(), Decimal(0))

    def tax_of(pk, amount) -> Decimal:
        """The tax in an amount given back on a line: the line's share, to the cent."""
        line = lines.get(pk)
        if line is None or not line.total or not line.tax_amount:
            return Decimal(0)
        return Money(amount * line.tax_amount / line.total, invoice.currency).rounded().amount

    taxes = {pk: tax_of(pk, amount) for pk, amount in amounts.items()}
    tax_total = sum(taxes.values(), Decimal(0))
    note = CreditNote.objects.create(
        number=document_number("CN", timezone.localtime(now, order.account.tzinfo).year),
        account=order.account,
        invoice=invoice,
        issued_at=now,
        currency=invoice.currency,
        seller=seller_snapshot(),
        buyer=buyer_snapshot(order.account),
        reason=reason[:200],
        reference=reference[:100],
        key=key,
        subtotal=total - tax_total,
        tax_total=tax_total,
        total=total,
        refunded_to_card=total if to_card else Decimal(0),
        credited_to_balance=Decimal(0) if to_card else total,
    )
    CreditNoteLine.objects.bulk_create(
        [
            CreditNoteLine(
                credit_note=note,
                invoice_line=lines.get(pk),
                description=lines[pk].description if pk in lines else reason,
                amount=amount - taxes[pk],
                tax_amount=taxes[pk],
                total=amount,
            )
            for pk, amount in amounts.items()
        ]
    )
    audit_record(
        actor=None,
        action="credit_note.issued",
        target=note,
        account=order.account,
        changes={"invoice": invoice.number, "total": str(total), "reference": reference},
    )
    outbox.enqueue(tasks.send_credit_note_email, note.pk)
    return note


def credit_note_for_refunds(refunds: list[LineRefund], *, reason: str) -> CreditNote | None:
    """The credit note of the money that came back on one order's lines (refund_record)."""
    if not refunds:
        return None
    first = refunds[0]
    order = first.line.order
    return credit_note_issue(
        order=order,
        amounts={refund.line_id: refund.amount for refund in refunds},
        to_card=first.method == LineRefund.Method.ORIGINAL,
        reason=reason,
        reference=first.reference,
        key=f"refund:{first.key}",
        now=first.created_at,
    )


def credit_note_for_credit(
    *, order: Order, line: OrderLine | None, amount: Decimal, reason: str, key: str, now=None
) -> CreditNote | None:
    """A credit to the balance that corrects an invoiced order (a seat decrease's credit,
    a staff credit tied to an order)."""
    if amount <= 0:
        return None
    target = (
        line.pk
        if line is not None
        else order.lines.order_by("pk").values_list("pk", flat=True).first()
    )
    return credit_note_issue(
        order=order,
        amounts={target: amount},
        to_card=False,
        reason=reason,
        reference=order.number,
        key=key,
        now=now,
    )
