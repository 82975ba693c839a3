"""Invoices and credit notes as PDF: an HTML template rendered by WeasyPrint, from the
document's own (immutable) rows, so the same document always prints the same."""

from django.template.loader import render_to_string
from django.utils import timezone

from .models import CreditNote, Invoice
from .money import Money
from .tax import REVERSE_CHARGE, REVERSE_CHARGE_NOTE


def _context(document, kind: str) -> dict:
    tz = document.account.tzinfo
    issued = timezone.localtime(document.issued_at, tz).date()

    def money(value) -> str:
        return str(Money(value, document.currency).rounded())

    fields = (
        "subtotal",
        "tax_total",
        "total",
        "credit_applied",
        "amount_paid",
        "refunded_to_card",
        "credited_to_balance",
    )
    return {
        "doc": document,
        "kind": kind,
        "issued": f"{issued.day} {issued:%B %Y}",
        "money": money,
        "sums": {
            name: money(getattr(document, name)) for name in fields if hasattr(document, name)
        },
    }


def _render(template: str, context: dict) -> bytes:
    import weasyprint  # loads Pango and its fonts: only in the processes that make PDFs

    with timezone.override(context["doc"].account.tzinfo):  # its dates in the buyer's zone
        html = render_to_string(template, context)
    return weasyprint.HTML(string=html).write_pdf()


def invoice_pdf(invoice: Invoice) -> bytes:
    context = _context(invoice, "Invoice")
    context["lines"] = [
        {
            "line": line,
            "unit": context["money"](line.unit_price),
            "amount": context["money"](line.amount),
            "tax": context["money"](line.tax_amount),
            "total": context["money"](line.total),
            "period": (
                f"{line.period_start.day} {line.period_start:%b %Y} to "
                f"{line.period_end.day} {line.period_end:%b %Y}"
                if line.period_start and line.period_end
                else ""
            ),
        }
        for line in invoice.lines.all()
    ]
    context["reverse_charge"] = (
        REVERSE_CHARGE_NOTE
        if any(line.tax_name == REVERSE_CHARGE for line in invoice.lines.all())
        else ""
    )
    return _render("billing/pdf/invoice.html", context)


def credit_note_pdf(note: CreditNote) -> bytes:
    context = _context(note, "Credit note")
    context["lines"] = [
        {
            "line": line,
            "amount": context["money"](line.amount),
            "tax": context["money"](line.tax_amount),
            "total": context["money"](line.total),
        }
        for line in note.lines.all()
    ]
    return _render("billing/pdf/credit_note.html", context)
