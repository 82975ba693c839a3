"""Staff console: invoices and credit notes (read only: corrections are credit notes),
with an export of the selected period as CSV for the accountant; billing details."""

import csv
from collections.abc import Callable
from operator import attrgetter

from django.contrib import admin
from django.http import HttpResponse
from django.utils import timezone

from accounts.admin import AuditedAdmin, ReadOnlyAdmin

from .models import BillingDetails, CreditNote, CreditNoteLine, Invoice, InvoiceLine, TaxRate


def _issued_on(document) -> str:
    return timezone.localtime(document.issued_at).date().isoformat()


def _amount(field: str):
    return lambda document: f"{getattr(document, field):.2f}"


def csv_export(filename: str, columns: list[tuple[str, Callable]], *, related: list[str]):
    """The action "Export the selected as CSV (for the accountant)" of a document list
    (invoices, credit notes): a header of `columns`' names, then one row per document
    in number order, each cell its column's function of the document."""

    @admin.action(description="Export the selected as CSV (for the accountant)")
    def export_csv(modeladmin, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        writer = csv.writer(response)
        writer.writerow([name for name, _ in columns])
        for document in queryset.select_related(*related).order_by("number"):
            writer.writerow([value(document) for _, value in columns])
        return response

    return export_csv


INVOICE_COLUMNS = [
    ("number", attrgetter("number")),
    ("date", _issued_on),
    ("buyer", attrgetter("account.name")),
    ("buyer_tax_id", lambda invoice: invoice.buyer.get("tax_id", "")),
    ("order", attrgetter("order.number")),
    ("currency", attrgetter("currency")),
    ("subtotal", _amount("subtotal")),
    ("tax", _amount("tax_total")),
    ("total", _amount("total")),
    ("paid_by_credit", _amount("credit_applied")),
    ("paid_by_payment", _amount("amount_paid")),
    ("method", attrgetter("payment_method")),
    ("reference", attrgetter("payment_reference")),
]

CREDIT_NOTE_COLUMNS = [
    ("number", attrgetter("number")),
    ("date", _issued_on),
    ("buyer", attrgetter("account.name")),
    ("invoice", attrgetter("invoice.number")),
    ("currency", attrgetter("currency")),
    ("subtotal", _amount("subtotal")),
    ("tax", _amount("tax_total")),
    ("total", _amount("total")),
    ("refunded_to_card", _amount("refunded_to_card")),
    ("credited_to_balance", _amount("credited_to_balance")),
    ("reference", attrgetter("reference")),
    ("reason", attrgetter("reason")),
]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = [
        "description",
        "period_start",
        "period_end",
        "quantity",
        "unit_price",
        "amount",
        "tax_amount",
        "total",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class CreditNoteLineInline(admin.TabularInline):
    model = CreditNoteLine
    extra = 0
    can_delete = False
    fields = ["description", "amount", "tax_amount", "total"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "account",
        "order",
        "issued_at",
        "total",
        "currency",
        "payment_method",
    ]
    list_filter = ["currency", "payment_method", ("issued_at", admin.DateFieldListFilter)]
    search_fields = ["number", "order__number", "account__name", "payment_reference"]
    date_hierarchy = "issued_at"
    list_select_related = ["account", "order"]
    inlines = [InvoiceLineInline]
    actions = [csv_export("invoices.csv", INVOICE_COLUMNS, related=["account", "order"])]


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "account",
        "invoice",
        "issued_at",
        "total",
        "refunded_to_card",
        "credited_to_balance",
        "reference",
    ]
    list_filter = ["currency", ("issued_at", admin.DateFieldListFilter)]
    search_fields = ["number", "invoice__number", "account__name", "reference"]
    date_hierarchy = "issued_at"
    list_select_related = ["account", "invoice"]
    inlines = [CreditNoteLineInline]
    actions = [csv_export("credit-notes.csv", CREDIT_NOTE_COLUMNS, related=["account", "invoice"])]


@admin.register(BillingDetails)
class BillingDetailsAdmin(ReadOnlyAdmin):
    list_display = ["account", "legal_name", "country", "tax_id", "updated_at"]
    list_filter = ["country"]
    search_fields = ["account__name", "legal_name", "tax_id"]


@admin.register(TaxRate)
class TaxRateAdmin(AuditedAdmin):
    """Tax rates per country (and region): a change is a new rate from its date."""

    list_display = ["country", "region", "name", "rate", "valid_from"]
    list_filter = ["country", "name"]
    search_fields = ["country", "region", "name"]
