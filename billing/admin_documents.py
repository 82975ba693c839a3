"""Staff console: invoices and credit notes (read only: corrections are credit notes),
with an export of the selected period as CSV for the accountant; billing details."""

import csv

from django.contrib import admin
from django.http import HttpResponse
from django.utils import timezone

from accounts.admin import AuditedAdmin, ReadOnlyAdmin

from .models import BillingDetails, CreditNote, CreditNoteLine, Invoice, InvoiceLine, TaxRate


def _csv(filename: str, header: list[str], rows) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    return response


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
    actions = ["export_csv"]

    @admin.action(description="Export the selected as CSV (for the accountant)")
    def export_csv(self, request, queryset):
        rows = (
            [
                i.number,
                timezone.localtime(i.issued_at).date().isoformat(),
                i.account.name,
                i.buyer.get("tax_id", ""),
                i.order.number,
                i.currency,
                f"{i.subtotal:.2f}",
                f"{i.tax_total:.2f}",
                f"{i.total:.2f}",
                f"{i.credit_applied:.2f}",
                f"{i.amount_paid:.2f}",
                i.payment_method,
                i.payment_reference,
            ]
            for i in queryset.select_related("account", "order").order_by("number")
        )
        header = [
            "number",
            "date",
            "buyer",
            "buyer_tax_id",
            "order",
            "currency",
            "subtotal",
            "tax",
            "total",
            "paid_by_credit",
            "paid_by_payment",
            "method",
            "reference",
        ]
        return _csv("invoices.csv", header, rows)


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
    actions = ["export_csv"]

    @admin.action(description="Export the selected as CSV (for the accountant)")
    def export_csv(self, request, queryset):
        rows = (
            [
                n.number,
                timezone.localtime(n.issued_at).date().isoformat(),
                n.account.name,
                n.invoice.number,
                n.currency,
                f"{n.subtotal:.2f}",
                f"{n.tax_total:.2f}",
                f"{n.total:.2f}",
                f"{n.refunded_to_card:.2f}",
                f"{n.credited_to_balance:.2f}",
                n.reference,
                n.reason,
            ]
            for n in queryset.select_related("account", "invoice").order_by("number")
        )
        header = [
            "number",
            "date",
            "buyer",
            "invoice",
            "currency",
            "subtotal",
            "tax",
            "total",
            "refunded_to_card",
            "credited_to_balance",
            "reference",
            "reason",
        ]
        return _csv("credit-notes.csv", header, rows)


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
